#!/usr/bin/env bash
# Packages for the deploy tests (CI calls this as root after docker-setup.sh; idempotent, quick on a re-run):
#   openssh-server + openssh-client  each fake device's own sshd (started by the tests, loopback only)
#   docker-registry                  Debian's registry (distribution 2.8.2), started by the tests on 127.0.0.1
# (paramiko, docker-py's ssh:// transport, comes with requirements/host.txt through `make setup`.)
# Nothing is started here and no system service is enabled: tests/plugins/deploy_rig.py starts the registry,
# the extra dockerd engines and their sshd as its own processes and stops them by pid.
set -euo pipefail
cd "$(dirname "$0")/.."
log() { printf '[deploy-setup] %s\n' "$*"; }
SUDO=""
if [[ $(id -u) -ne 0 ]]; then SUDO="sudo"; fi

need=()
[[ -x /usr/sbin/sshd ]] || need+=(openssh-server)
command -v ssh-keygen >/dev/null || need+=(openssh-client)
[[ -x /usr/bin/docker-registry ]] || need+=(docker-registry)
if (( ${#need[@]} )); then
  log "apt: ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  # policy-rc.d keeps the packages' own services from starting (the tests start what they need)
  printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
  $SUDO chmod +x /usr/sbin/policy-rc.d
  $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  $SUDO rm -f /usr/sbin/policy-rc.d
fi
$SUDO mkdir -p /run/sshd

log "ready: $(/usr/sbin/sshd -V 2>&1 | head -1 || true); $(/usr/bin/docker-registry --version 2>&1 | head -1)"
