# One image per service, all from this file, built from the repository root:
#   docker build --build-arg SERVICE=executor -t seqferry-executor .
# SERVICE is one of: scheduler, executor, adhoc, simulator, notifier.
#
# Two stages: the builder installs the service and shared/ into a virtualenv (dependencies first, in their own
# cached layer, with the versions pinned in constraints.txt); the runtime stage copies only that virtualenv onto
# the slim base, runs as an unprivileged user and writes nothing outside /tmp and its mounted volumes, so it
# runs with a read-only root filesystem.

ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm

# ---------------------------------------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS builder

ARG SERVICE
RUN case "${SERVICE}" in \
      scheduler|executor|adhoc|simulator|notifier) ;; \
      *) echo "build with --build-arg SERVICE=<scheduler|executor|adhoc|simulator|notifier> (got '${SERVICE}')" >&2; \
         exit 1 ;; \
    esac

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_INPUT=1 \
    VIRTUAL_ENV=/opt/seqferry/venv \
    PATH=/opt/seqferry/venv/bin:$PATH

RUN python -m venv "${VIRTUAL_ENV}"

WORKDIR /src

# Dependencies only: this layer is rebuilt when constraints or a pyproject.toml change, not when code does.
COPY constraints.txt ./
COPY deploy/docker/pyproject_deps.py /usr/local/bin/pyproject_deps.py
COPY shared/pyproject.toml shared/pyproject.toml
COPY services/${SERVICE}/pyproject.toml services/${SERVICE}/pyproject.toml
RUN --mount=type=cache,target=/root/.cache/pip \
    python /usr/local/bin/pyproject_deps.py shared/pyproject.toml "services/${SERVICE}/pyproject.toml" \
      > /tmp/requirements.txt \
    && pip install -c constraints.txt -r /tmp/requirements.txt

# The workspace members themselves (regular installs, not editable: the runtime stage has no source tree).
COPY shared shared
COPY services/${SERVICE} services/${SERVICE}
RUN --mount=type=cache,target=/root/.cache/pip \
    pip install --no-deps ./shared "./services/${SERVICE}" \
    && pip check \
    && test -x "${VIRTUAL_ENV}/bin/seqferry-${SERVICE}" \
    && test -x "${VIRTUAL_ENV}/bin/seqferry-bootstrap"

# ---------------------------------------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS runtime

ARG SERVICE
LABEL org.opencontainers.image.title="seqferry-${SERVICE}" \
      org.opencontainers.image.description="seqferry ${SERVICE} service"

# A fixed numeric uid/gid so Kubernetes can verify runAsNonRoot and volumes can be prepared for it.
RUN groupadd --system --gid 10001 seqferry \
    && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
       --shell /usr/sbin/nologin seqferry \
    && install -d -o 10001 -g 10001 -m 0750 /var/lib/seqferry /nas

COPY --from=builder /opt/seqferry/venv /opt/seqferry/venv
COPY deploy/docker/healthcheck.py /opt/seqferry/healthcheck.py
# A fixed entrypoint name for every image; it is the service's own console script.
RUN ln -s "/opt/seqferry/venv/bin/seqferry-${SERVICE}" /opt/seqferry/venv/bin/seqferry-service

# HOME=/tmp: anything that insists on a cache directory writes to the (mounted, writable) /tmp.
# The working directory is the state volume, so relative defaults such as var/state land on a mount too.
ENV PATH=/opt/seqferry/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp \
    SEQFERRY_SERVICE=${SERVICE} \
    SEQFERRY_HTTP_HOST=0.0.0.0 \
    SEQFERRY_NAS_ROOT=/nas \
    OTEL_SERVICE_NAME=seqferry-${SERVICE}

WORKDIR /var/lib/seqferry
USER 10001:10001

# Each service listens on its own default port (SEQFERRY_HTTP_PORT overrides): notifier 8080 (dashboard),
# scheduler 8081, executor 8082, adhoc 8083, simulator 8084.
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "/opt/seqferry/healthcheck.py"]

ENTRYPOINT ["seqferry-service"]
