#!/usr/bin/env bash
# Prepare this x86 machine to build and run linux/arm64 images under emulation (the arm64-cpu target):
#  1. qemu-user-static + binfmt-support from Debian; binfmt_misc mounted; the aarch64 handler enabled
#     (flag F: the interpreter is opened at registration, so it works inside containers too)
#  2. an arm64 `debian:bookworm-slim` base image made with debootstrap: --arch arm64 --foreign (download and
#     unpack on this host), then the second stage under qemu in a chroot, then a `FROM scratch` image built
#     with --platform linux/arm64 from that tree, as $ARM64_BASE (default edgebench-base/debian:bookworm-slim-arm64; no registry is reachable)
# Idempotent: each step is skipped when already done. Needs root and a running Docker engine
# (.ci/docker-setup.sh). Times each step into build/logs/arm64-setup.json.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
LOG_DIR="$ROOT/build/logs"
mkdir -p "$LOG_DIR"
ARM64_BASE=${ARM64_BASE:-edgebench-base/debian:bookworm-slim-arm64}
log() { printf '[arm64-setup] %s\n' "$*"; }
t0=$(date +%s)

need=()
[[ -x /usr/bin/qemu-aarch64-static ]] || need+=(qemu-user-static)
command -v update-binfmts >/dev/null 2>&1 || need+=(binfmt-support)
command -v debootstrap >/dev/null 2>&1 || need+=(debootstrap)
if ((${#need[@]})); then
  log "installing ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get -o DPkg::Lock::Timeout=600 update -qq
  apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${need[@]}" >"$LOG_DIR/apt-arm64.log" 2>&1 \
    || { tail -n 30 "$LOG_DIR/apt-arm64.log"; exit 1; }
fi
if [[ ! -e /proc/sys/fs/binfmt_misc/register ]]; then
  mount binfmt_misc -t binfmt_misc /proc/sys/fs/binfmt_misc
fi
[[ -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ]] || update-binfmts --enable qemu-aarch64
# registered but switched off (echo 0 > ...): switch it on
head -n 1 /proc/sys/fs/binfmt_misc/qemu-aarch64 | grep -qx enabled || echo 1 > /proc/sys/fs/binfmt_misc/qemu-aarch64
grep -q '^flags:.*F' /proc/sys/fs/binfmt_misc/qemu-aarch64 \
  || { log "qemu-aarch64 is registered without flag F: containers cannot use it"; exit 1; }
t_qemu=$(( $(date +%s) - t0 ))

if docker image inspect "$ARM64_BASE" >/dev/null 2>&1; then
  log "base image $ARM64_BASE present"
  t_stage1=0; t_stage2=0; t_import=0
else
  mirror=${DEBIAN_MIRROR:-$(awk '/^URIs:/ {print $2; exit} /^deb[ \t]/ {print $2; exit}' \
    /etc/apt/sources.list.d/*.sources /etc/apt/sources.list 2>/dev/null | grep -v security | head -n 1)}
  mirror=${mirror:-http://deb.debian.org/debian}
  tmp=$(mktemp -d /tmp/edgebench-arm64-rootfs.XXXXXX)
  trap 'rm -rf "$tmp"' EXIT
  s=$(date +%s)
  log "debootstrap --arch arm64 --foreign --variant=minbase bookworm from $mirror"
  debootstrap --arch arm64 --foreign --variant=minbase bookworm "$tmp" "$mirror" >"$LOG_DIR/debootstrap-arm64.log" 2>&1 \
    || { tail -n 30 "$LOG_DIR/debootstrap-arm64.log"; exit 1; }
  t_stage1=$(( $(date +%s) - s )); s=$(date +%s)
  log "second stage under qemu (chroot)"
  chroot "$tmp" /debootstrap/debootstrap --second-stage >>"$LOG_DIR/debootstrap-arm64.log" 2>&1 \
    || { tail -n 30 "$LOG_DIR/debootstrap-arm64.log"; exit 1; }
  t_stage2=$(( $(date +%s) - s )); s=$(date +%s)
  rm -rf "$tmp"/var/lib/apt/lists/* "$tmp"/var/cache/apt/*.bin "$tmp"/var/cache/apt/archives/*.deb
  # `docker import --platform` leaves the engine's own architecture on the image (seen with engine 20.10):
  # a FROM scratch build with --platform records linux/arm64
  ctx="$tmp.ctx"
  mkdir -p "$ctx"
  tar -C "$tmp" -c -f "$ctx/rootfs.tar" .
  printf '%s\n' 'FROM scratch' 'ADD rootfs.tar /' \
    'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' 'CMD ["bash"]' >"$ctx/Dockerfile"
  DOCKER_BUILDKIT=0 docker build -q --platform linux/arm64 -t "$ARM64_BASE" "$ctx" >/dev/null 2>"$LOG_DIR/arm64-import.log" \
    || { cat "$LOG_DIR/arm64-import.log"; rm -rf "$ctx"; exit 1; }
  rm -rf "$ctx"
  t_import=$(( $(date +%s) - s ))
fi
arch=$(docker image inspect "$ARM64_BASE" --format '{{.Os}}/{{.Architecture}}')
[[ "$arch" == "linux/arm64" ]] || { log "$ARM64_BASE is $arch, not linux/arm64"; exit 1; }
uname_m=$(docker run --rm --platform linux/arm64 --network none "$ARM64_BASE" uname -m)
[[ "$uname_m" == "aarch64" ]] || { log "an arm64 container says uname -m = $uname_m"; exit 1; }
printf '{"qemu_s": %s, "debootstrap_foreign_s": %s, "second_stage_qemu_s": %s, "import_s": %s, "total_s": %s}\n' \
  "$t_qemu" "$t_stage1" "$t_stage2" "$t_import" "$(( $(date +%s) - t0 ))" >"$LOG_DIR/arm64-setup.json"
log "ready: $ARM64_BASE ($arch), emulated uname -m = $uname_m; timings $(cat "$LOG_DIR/arm64-setup.json")"
