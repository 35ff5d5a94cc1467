#!/usr/bin/env bash
# Make a Docker engine answer on this machine, the way `make test` makes Chromium available:
#   1. an engine that already answers (DOCKER_HOST or /var/run/docker.sock) is used as it is;
#   2. else, as root with apt: install Debian's docker.io (and mmdebstrap, which builds the local base image when
#      no registry answers), start dockerd in the background logging to $SEQFERRY_DOCKERD_LOG, and wait for it;
#   3. else say why not and exit 0: the container tier then skips, giving the same reason.
# Exit status is non-zero only with --require (`make images` cannot do without an engine).
# --check only tells (exit 0 or 1) whether an engine answers, changing nothing.
set -uo pipefail

require=0
check=0
case "${1:-}" in
    --require) require=1 ;;
    --check) check=1 ;;
esac
log_file=${SEQFERRY_DOCKERD_LOG:-/var/log/seqferry-dockerd.log}
wait_s=${SEQFERRY_DOCKERD_WAIT_S:-60}

# Debian's client first: it has BuildKit built in, which RUN --mount needs; another client on PATH may lack buildx.
docker_cli() {
    if [ -x /usr/bin/docker ]; then /usr/bin/docker "$@"; else docker "$@"; fi
}

answers() {
    command -v docker >/dev/null 2>&1 || [ -x /usr/bin/docker ] || return 1
    timeout 10 bash -c "$(declare -f docker_cli); docker_cli info --format '{{.ServerVersion}}'" >/dev/null 2>&1
}

give_up() {
    echo "docker engine: $1; the container tier will be skipped"
    [ "$require" = 1 ] && exit 1
    exit 0
}

if [ "$check" = 1 ]; then
    answers
    exit $?
fi

if answers; then
    echo "docker engine: $(docker_cli info --format 'Docker {{.ServerVersion}} ({{.Driver}})' 2>/dev/null) answers"
    exit 0
fi

if [ -n "${DOCKER_HOST:-}" ] && [ "$DOCKER_HOST" != "unix:///var/run/docker.sock" ]; then
    give_up "DOCKER_HOST=$DOCKER_HOST does not answer (not starting a local one in its place)"
fi

if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    give_up "none answers, and starting one needs root and apt-get"
fi

if ! command -v dockerd >/dev/null 2>&1 || ! command -v mmdebstrap >/dev/null 2>&1 || [ ! -x /usr/bin/docker ]; then
    echo "docker engine: installing docker.io and mmdebstrap (Debian)"
    if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
            docker.io mmdebstrap >/dev/null; }; then
        give_up "could not install docker.io with apt-get"
    fi
fi

if pgrep -x dockerd >/dev/null 2>&1; then
    echo "docker engine: a dockerd is running but does not answer yet; waiting for it"
else
    echo "docker engine: starting dockerd (log: $log_file)"
    mkdir -p "$(dirname "$log_file")"
    # setsid + nohup: the daemon outlives this make invocation, like a system service would.
    setsid nohup dockerd >>"$log_file" 2>&1 </dev/null &
fi

for _ in $(seq 1 "$wait_s"); do
    if answers; then
        echo "docker engine: $(docker_cli info --format 'Docker {{.ServerVersion}} ({{.Driver}})' 2>/dev/null) answers"
        exit 0
    fi
    sleep 1
done
give_up "dockerd did not answer within ${wait_s} s (see $log_file: $(tail -n 3 "$log_file" 2>/dev/null | tr '\n' ' '))"
