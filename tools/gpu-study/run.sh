#!/usr/bin/env bash
# The GPU inference-time study on the lent H100/H200 machine (PyTorch there; no TensorFlow, no Docker).
# It only calls the kit: `python -m edgebench bench` with the study suites. Staged inputs persist in
# /root/stage while the machine stays warm, because one call carries at most 64 MiB:
#   .stage/c*/  <stem>.model.onnx.part.*, <stem>.manifest.json, <stem>.train.json, cifar10-test.zip
#   .whl/       onnx2torch (pure Python), installed into /tmp/site
# Usage: tools/gpu-study/run.sh stage | test | torch STEM | cpu STEM | profile STEM | fused STEM | pipe STEM | all
#        (STEM: orig or cifar)
#   all: the whole study in one command (test, then torch, cpu, profile and fused for both stems), for a machine
#        that holds every input at once and has no per-call time limit (BUDGET=0 turns the per-step limit off)
#   profile: tools/gpu-study/profile_kernels.py on the configurations below -> results/profile-<stem>-<card>.json
#   fused: the cuDNN-fusion suite (gpu-fused: fused variants next to the unfused ones, same batch sweep, full test
#          set) and the profile of fused against unfused -> results/gpu-fused-<stem>-<card>.json,
#          results/profile-fused-<stem>-<card>.json
#   pipe: the short suite gpu-fused-pipe (torch-fused-compile-pipe: copies inside the graph at small batches,
#         overlapped with the compute in chunks at large ones, next to the fused row without them and an FP32 row)
#         and its profile -> results/gpu-fused-pipe-<stem>-<card>.json, results/profile-pipe-<stem>-<card>.json
# Results: /root/stage/results/<suite>-<stem>-<card>.json, copied to $OUT after every step. A step that
# runs out of time (BUDGET seconds, default 540; PROFILE_BUDGET for a profile step) stops like Ctrl-C; the same
# command again resumes it.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=${STAGE_ROOT:-/root/stage}
OUTDIR=${OUT:-/tmp/gpu-study-out}
mkdir -p "$ROOT/parts" "$ROOT/results" "$OUTDIR"
if ls .whl/*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
fi
export PYTHONPATH=/tmp/site:$PWD/src PYTHONUNBUFFERED=1
CARD=$(nvidia-smi --query-gpu=name --format=csv,noheader | head -1 | tr 'A-Z' 'a-z' | grep -o 'h100\|h200\|a100\|l4\|orin' | head -1 || true)
CARD=${CARD:-gpu}

stage() {
  cp -n .stage/c*/* "$ROOT/parts/" 2>/dev/null || true
  [ -f "$ROOT/parts/cifar10-test.zip" ] && cp -n "$ROOT/parts/cifar10-test.zip" "$ROOT/"
  for stem in orig cifar; do
    mkdir -p "$ROOT/$stem"
    for f in manifest.json train.json; do
      [ -f "$ROOT/parts/$stem.$f" ] && cp "$ROOT/parts/$stem.$f" "$ROOT/$stem/$f"
    done
    [ -f "$ROOT/$stem/manifest.json" ] || { echo "$stem: manifest not staged yet"; continue; }
    want=$(python3 -c "import json,sys; print([a['sha256'] for a in json.load(open(sys.argv[1]))['artifacts'] if a['path']=='model.onnx'][0])" "$ROOT/$stem/manifest.json")
    [ -f "$ROOT/$stem/model.onnx" ] && [ "$(sha256sum < "$ROOT/$stem/model.onnx" | cut -d' ' -f1)" = "$want" ] && { echo "$stem: model.onnx ok"; continue; }
    ls "$ROOT/parts/$stem.model.onnx.part."* >/dev/null 2>&1 || { echo "$stem: no model parts staged yet"; continue; }
    cat "$ROOT/parts/$stem.model.onnx.part."* > "$ROOT/$stem/model.onnx"
    got=$(sha256sum < "$ROOT/$stem/model.onnx" | cut -d' ' -f1)
    if [ "$got" = "$want" ]; then echo "$stem: model.onnx assembled, sha256 ok"; else echo "$stem: parts incomplete ($(ls "$ROOT/parts" | grep -c "^$stem.model") so far)"; rm "$ROOT/$stem/model.onnx"; fi
  done
}

bench() {  # suite stem
  local out="$ROOT/results/$1-$2-$CARD.json"
  timeout -s TERM "${BUDGET:-540}" python3 -m edgebench bench --artifacts "$ROOT/$2" --suite "src/edgebench/suites/$1.yaml" \
    --data "$ROOT/cifar10-test.zip" --reference onnxruntime --device "$CARD" --out "$out" --resume || echo "bench exit $?"
  cp "$out" "$OUTDIR/" 2>/dev/null || true
}

# what the profile looks at: batch 1 (launch-bound?) and large batches (which kernels, how near the roofline)
# (override with PROFILE="backend:precision:batch[:option=value] ..."; the slowest, an autotuning compile, is last)
# shellcheck disable=SC2206  # word splitting is the point: one config a word
PROFILE_CONFIGS=(${PROFILE:-torch:fp32:1 torch-graph:fp16:1 torch-compile-graph:fp16:1
  torch-compute:fp16:1024 torch-compile-compute:fp16:1024 torch-compile-compute:fp16:4096
  torch-compile-compute:fp16:1024:freeze=true torch-compile-compute:fp16:4096:compile_mode=max-autotune-no-cudagraphs})

# the fused rows against the unfused ones they build on: batch 1 (where the 0.3 ms goal is) and 4096 (peak)
# shellcheck disable=SC2206
FUSED_CONFIGS=(${PROFILE_FUSED:-torch-compile-graph:fp16:1 torch-fused-graph:fp16:1 torch-fused-compile-graph:fp16:1
  torch-fused-compile-graph:bf16:1 torch-compile-compute:fp16:4096 torch-fused-compute:fp16:4096
  torch-fused-compile-compute:fp16:4096 torch-fused-graph:fp16:4096})

# the pipelined row where its goals are: batch 4096 end to end (copies overlapped) and batch 1 (copies in the graph)
# shellcheck disable=SC2206
PIPE_CONFIGS=(${PROFILE_PIPE:-torch-fused-compile-pipe:bf16:4096 torch-fused-compile-pipe:fp16:1})

profile() {  # stem [name config...]
  local stem=$1 name=${2:-profile}; shift; [ $# -gt 0 ] && shift
  local out="$ROOT/results/$name-$stem-$CARD.json"
  [ $# -gt 0 ] || set -- "${PROFILE_CONFIGS[@]}"
  timeout -s TERM "${PROFILE_BUDGET:-${BUDGET:-540}}" python3 tools/gpu-study/profile_kernels.py --artifacts "$ROOT/$stem" --out "$out" \
    "$@" || echo "profile exit $?"
  cp "$out" "$OUTDIR/" 2>/dev/null || true
}

case "${1:-}" in
  stage) stage ;;
  test) stage; nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv,noheader
        EDGEBENCH_GPU_MODELS="$ROOT" python3 -m pytest -q -p no:cacheprovider tests/unit/test_torch_gpu.py \
          tests/unit/test_torch_fuse.py -ra ;;
  torch) stage; bench gpu-torch "$2" ;;
  cpu) stage; bench gpu-host-cpu "$2" ;;
  profile) stage; profile "$2" ;;
  fused) stage; bench gpu-fused "$2"; profile "$2" profile-fused "${FUSED_CONFIGS[@]}" ;;
  pipe) stage; bench gpu-fused-pipe "$2"; profile "$2" profile-pipe "${PIPE_CONFIGS[@]}" ;;
  all) "$0" test; for stem in orig cifar; do "$0" torch "$stem"; "$0" cpu "$stem"; "$0" profile "$stem"
         "$0" fused "$stem"; done ;;
  *) echo "usage: $0 stage | test | torch STEM | cpu STEM | profile STEM | fused STEM | pipe STEM | all" >&2; exit 2 ;;
esac
