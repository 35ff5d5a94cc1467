"""Build every image the compose stack needs from this repository: ``make images``.

- the five service images ``seqferry-<service>:<tag>`` from the one ``Dockerfile``;
- ``seqferry-emulator:moto-<version>``, moto's server at the version pinned in ``constraints.txt``, which plays
  LocalStack where its image cannot be pulled (``deploy/compose/no-registry.yaml``);
- ``seqferry-localstack:<version>``, LocalStack from its Python package (``deploy/localstack/``), on a base made
  from Debian trixie's packages (Python 3.13): LocalStack itself where its image cannot be pulled
  (``deploy/compose/localstack-local.yaml``, the LocalStack test tier). ``--no-localstack`` leaves it out.

The Python base is the Dockerfile's default (the official slim image) when it is present or can be pulled. Where
no registry answers, a base is built from Debian packages instead (``mmdebstrap`` piped into ``docker import``)
and carries the machine's CA bundle (the file ``PIP_CERT`` names) with ``PIP_CERT`` pointing at it, so pip inside
``docker build`` verifies TLS the way pip on the host does. That base is tagged with a hash of its inputs (suite,
packages, recipe, CA bundle) and rebuilt only when one of them changes. The script says which base it used.

Standard library only, so it runs before any virtualenv exists: ``python3 deploy/docker/images.py --help``.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SERVICES = ("executor", "scheduler", "notifier", "adhoc", "simulator")
DEFAULT_TAG = "dev"
LOCAL_BASE_REPOSITORY = "seqferry-base"
CA_BUNDLE_IN_IMAGE = "/usr/local/share/seqferry/ca-bundle.pem"
PULL_TIMEOUT_S = 300
# A change here changes the local base's tag, so the next build makes a new one.
BASE_RECIPE_VERSION = "1"


@dataclass(frozen=True)
class DebianBase:
    """A Python base image made from Debian packages: the stand-in for an image that cannot be pulled."""

    suite: str
    packages: tuple[str, ...]

    def mmdebstrap_args(self, ca_bundle: Path, target: Path) -> list[str]:
        return [
            "mmdebstrap",
            "--quiet",
            "--variant=minbase",
            "--include=" + ",".join(self.packages),
            # Documentation and translations are never read in a container.
            "--dpkgopt=path-exclude=/usr/share/doc/*",
            "--dpkgopt=path-exclude=/usr/share/man/*",
            "--dpkgopt=path-exclude=/usr/share/locale/*",
            f'--customize-hook=mkdir -p "$1{Path(CA_BUNDLE_IN_IMAGE).parent}"',
            f"--customize-hook=upload {ca_bundle} {CA_BUNDLE_IN_IMAGE}",
            self.suite,
            str(target),
        ]

    def tag(self, ca_bundle: Path) -> str:
        digest = hashlib.sha256()
        for part in (BASE_RECIPE_VERSION, self.suite, *self.packages, CA_BUNDLE_IN_IMAGE):
            digest.update(part.encode() + b"\0")
        digest.update(ca_bundle.read_bytes())
        return f"{LOCAL_BASE_REPOSITORY}:{self.suite}-{digest.hexdigest()[:12]}"


# Debian bookworm's python3 is 3.11, the version the official base (python:3.11.x-slim-bookworm) carries.
BOOKWORM = DebianBase("bookworm", ("python3", "python3-venv", "python-is-python3", "ca-certificates"))
# Debian trixie's python3 is 3.13, which LocalStack's Python package needs.
TRIXIE = DebianBase("trixie", ("python3", "python3-venv", "python-is-python3", "ca-certificates"))


class BuildError(RuntimeError):
    pass


def docker_cli() -> str:
    """Debian's client when installed: it has BuildKit built in (RUN --mount); another client may lack buildx."""
    explicit = os.environ.get("SEQFERRY_DOCKER")
    if explicit:
        return explicit
    if Path("/usr/bin/docker").exists():
        return "/usr/bin/docker"
    found = shutil.which("docker")
    if found is None:
        raise BuildError("no docker client found (install Debian's docker.io, or run `make docker-engine`)")
    return found


def build_env() -> dict[str, str]:
    return {**os.environ, "DOCKER_BUILDKIT": "1"}


def run(argv: list[str], *, timeout: float | None = None, log: Path | None = None) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(  # noqa: S603 - argv built here
        argv, capture_output=True, text=True, env=build_env(), check=False, timeout=timeout
    )
    if log is not None:
        log.parent.mkdir(parents=True, exist_ok=True)
        log.write_text(f"$ {' '.join(argv)}\n{result.stdout}{result.stderr}", encoding="utf-8")
    return result


def image_exists(docker: str, image: str) -> bool:
    return run([docker, "image", "inspect", "--format", "{{.Id}}", image]).returncode == 0


def dockerfile_default_base(dockerfile: Path = REPO / "Dockerfile") -> str:
    match = re.search(r"^ARG PYTHON_IMAGE=(\S+)$", dockerfile.read_text(encoding="utf-8"), re.MULTILINE)
    if match is None:
        raise BuildError(f"{dockerfile} declares no default ARG PYTHON_IMAGE")
    return match.group(1)


def pinned_version(package: str, constraints: Path = REPO / "constraints.txt") -> str:
    for line in constraints.read_text(encoding="utf-8").splitlines():
        name, sep, version = line.partition("==")
        if sep and re.sub(r"[-_.]+", "-", name).lower() == package:
            return version.strip()
    raise BuildError(f"{package} has no pin in {constraints}")


def emulator_image() -> str:
    return f"seqferry-emulator:moto-{pinned_version('moto')}"


def localstack_image() -> str:
    requirements = REPO / "deploy" / "localstack" / "requirements.txt"
    return f"seqferry-localstack:{pinned_version('localstack-core', requirements)}"


def ca_bundle() -> Path:
    candidates = (os.environ.get("PIP_CERT"), os.environ.get("SSL_CERT_FILE"), "/etc/ssl/certs/ca-certificates.crt")
    for candidate in candidates:
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    raise BuildError("no CA bundle found (PIP_CERT, SSL_CERT_FILE or /etc/ssl/certs/ca-certificates.crt)")


def build_local_base(docker: str, base: DebianBase, logs: Path) -> tuple[str, bool]:
    """The Debian-made base for these inputs: (tag, built now). Older local bases are removed."""
    bundle = ca_bundle()
    tag = base.tag(bundle)
    if image_exists(docker, tag):
        return tag, False
    if shutil.which("mmdebstrap") is None:
        raise BuildError("mmdebstrap is needed to build a base image without a registry (apt-get install mmdebstrap)")
    with tempfile.TemporaryDirectory(prefix="seqferry-base-") as scratch:
        rootfs = Path(scratch) / "rootfs.tar"
        made = run(base.mmdebstrap_args(bundle, rootfs), timeout=1800, log=logs / "base-mmdebstrap.log")
        if made.returncode != 0 or not rootfs.is_file():
            raise BuildError(f"mmdebstrap failed (log: {logs / 'base-mmdebstrap.log'}):\n{tail(made)}")
        imported = run(
            [
                docker,
                "import",
                "--change",
                f"ENV PIP_CERT={CA_BUNDLE_IN_IMAGE}",
                "--change",
                "ENV LANG=C.UTF-8",
                "--change",
                'CMD ["python3"]',
                str(rootfs),
                tag,
            ],
            timeout=600,
            log=logs / "base-import.log",
        )
        if imported.returncode != 0:
            raise BuildError(f"docker import failed:\n{tail(imported)}")
    listed = run([docker, "image", "ls", "--format", "{{.Repository}}:{{.Tag}}", LOCAL_BASE_REPOSITORY])
    for old in listed.stdout.split():
        if old.startswith(f"{LOCAL_BASE_REPOSITORY}:{base.suite}-") and old != tag:
            run([docker, "image", "rm", old])
    return tag, True


def choose_base(docker: str, requested: str | None, logs: Path) -> tuple[str, str]:
    """The base image to build on and a sentence saying why."""
    if requested:
        return requested, "asked for (PYTHON_IMAGE)"
    official = dockerfile_default_base()
    if image_exists(docker, official):
        return official, "the Dockerfile's default, already present"
    pulled = run([docker, "pull", "--quiet", official], timeout=PULL_TIMEOUT_S)
    if pulled.returncode == 0:
        return official, "the Dockerfile's default, pulled"
    reason = (pulled.stderr.strip() or pulled.stdout.strip()).splitlines()[-1:] or ["no answer"]
    tag, built = build_local_base(docker, BOOKWORM, logs)
    how = "built now" if built else "cached, inputs unchanged"
    return tag, (
        f"Debian {BOOKWORM.suite} packages + this machine's CA bundle ({how}); {official} cannot be pulled: {reason[0]}"
    )


@dataclass(frozen=True)
class ImageBuild:
    image: str
    dockerfile: Path
    args: dict[str, str]

    def argv(self, docker: str) -> list[str]:
        argv = [docker, "build", "--quiet", "--file", str(self.dockerfile), "--tag", self.image]
        for key, value in self.args.items():
            argv += ["--build-arg", f"{key}={value}"]
        return [*argv, str(REPO)]


def planned_builds(base: str, tag: str, services: tuple[str, ...], localstack_base: str | None) -> list[ImageBuild]:
    builds = []
    if localstack_base is not None:
        dockerfile = REPO / "deploy" / "localstack" / "Dockerfile"
        builds.append(ImageBuild(localstack_image(), dockerfile, {"BASE_IMAGE": localstack_base}))
    builds += [
        ImageBuild(f"seqferry-{service}:{tag}", REPO / "Dockerfile", {"PYTHON_IMAGE": base, "SERVICE": service})
        for service in services
    ]
    builds.append(ImageBuild(emulator_image(), REPO / "deploy" / "emulator" / "Dockerfile", {"PYTHON_IMAGE": base}))
    return builds


def build_one(docker: str, build: ImageBuild, logs: Path) -> float:
    started = time.monotonic()
    log = logs / (build.image.replace(":", "_").replace("/", "_") + ".log")
    result = run(build.argv(docker), timeout=1800, log=log)
    if result.returncode != 0:
        raise BuildError(f"building {build.image} failed (log: {log}):\n{tail(result)}")
    return time.monotonic() - started


def tail(result: subprocess.CompletedProcess[str], lines: int = 25) -> str:
    return "\n".join((result.stdout + result.stderr).splitlines()[-lines:])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Build the seqferry images (see the module docstring).")
    parser.add_argument("--base", default=os.environ.get("PYTHON_IMAGE") or None, help="Python base image to use")
    parser.add_argument("--tag", default=DEFAULT_TAG, help="tag of the service images (default: dev)")
    parser.add_argument("--jobs", type=int, default=2, help="images built at the same time (default: 2)")
    parser.add_argument("--logs", type=Path, default=REPO / "var" / "log" / "images", help="build logs go here")
    parser.add_argument("--no-localstack", action="store_true", help="do not build the LocalStack image")
    args = parser.parse_args(argv)
    started = time.monotonic()
    try:
        docker = docker_cli()
        if run([docker, "info", "--format", "{{.ServerVersion}}"], timeout=30).returncode != 0:
            raise BuildError("no Docker engine answers (`make docker-engine` starts one as root)")
        base, why = choose_base(docker, args.base, args.logs)
        print(f"images: base {base} — {why}", flush=True)  # noqa: T201 - a command-line tool's report
        localstack_base = None
        if not args.no_localstack:
            localstack_base, built = build_local_base(docker, TRIXIE, args.logs)
            how = "built now" if built else "cached, inputs unchanged"
            print(f"images: LocalStack base {localstack_base} — Debian {TRIXIE.suite} packages ({how})", flush=True)  # noqa: T201
        builds = planned_builds(base, args.tag, SERVICES, localstack_base)
        with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
            times = list(pool.map(lambda b: (b.image, build_one(docker, b, args.logs)), builds))
    except (BuildError, subprocess.TimeoutExpired) as exc:
        print(f"images: {exc}", file=sys.stderr)  # noqa: T201
        return 1
    for image, seconds in times:
        print(f"images: {image} ({seconds:.0f} s)")  # noqa: T201
    print(f"images: done in {time.monotonic() - started:.0f} s")  # noqa: T201
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
