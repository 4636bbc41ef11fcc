#!/usr/bin/env bash
# The GPU inference-time study on the lent H100/H200 machine (PyTorch there; no TensorFlow, no Docker).
# It only calls the kit: `python -m edgebench bench` with the study suites. Staged inputs persist in
# /root/stage while the machine stays warm, because one call carries at most 64 MiB:
#   .stage/c*/  <stem>.model.onnx.part.*, <stem>.manifest.json, <stem>.train.json, cifar10-test.zip (split-stage.sh)
#   .stage/p*/  or <stem>.pack.part.* and <stem>.pack.parts (stage-packs.sh: the model packed, 3 calls for both)
#   .whl/       onnx2torch (pure Python), installed into /tmp/site
# Usage: tools/gpu-study/run.sh stage | test | torch STEM | cpu STEM | profile STEM | fused STEM | pipe STEM |
#        rand | b1 STEM | orig-pipe | all   (STEM: orig or cifar)
#   all: the whole study in one command (test, then torch, cpu, profile and fused for both stems), for a machine
#        that holds every input at once and has no per-call time limit (BUDGET=0 turns the per-step limit off)
#   profile: tools/gpu-study/profile_kernels.py on the configurations below -> results/profile-<stem>-<card>.json
#   fused: the cuDNN-fusion suite (gpu-fused: fused variants next to the unfused ones, same batch sweep, full test
#          set) and the profile of fused against unfused -> results/gpu-fused-<stem>-<card>.json,
#          results/profile-fused-<stem>-<card>.json
#   pipe: the short suite gpu-fused-pipe (torch-fused-compile-pipe: copies inside the graph at small batches,
#         overlapped with the compute in chunks at large ones, next to the fused row without them and an FP32 row)
#         and its profile -> results/gpu-fused-pipe-<stem>-<card>.json, results/profile-pipe-<stem>-<card>.json
#   rand: the GPU tests of the batch-1 passes and the chunked path on seeded random-weight copies of both stems'
#         graphs (random_weights.py fill of the staged templates; needs no trained model), then their profiles:
#         torch-fused-compile-pipe against -lean at batch 1 (CIFAR stem) -> results/profile-rand-rand-cifar-<card>.json
#   b1: the batch-1 suite gpu-fused-b1 (lean against pipe, full test set) and its profile
#       -> results/gpu-fused-b1-<stem>-<card>.json, results/profile-b1-<stem>-<card>.json
#   orig-pipe: the original stem's suite gpu-fused-orig-pipe (batch 1 and 32,768 in chunks, fused against unfused,
#       full test set) and its profile with each batch's logits checked against ONNX Runtime (--check 512)
#       -> results/gpu-fused-orig-pipe-orig-<card>.json, results/profile-orig-pipe-orig-<card>.json
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
  cp -n .stage/*/* "$ROOT/parts/" 2>/dev/null || true
  [ -f "$ROOT/parts/cifar10-test.zip" ] && cp -n "$ROOT/parts/cifar10-test.zip" "$ROOT/"
  for stem in orig cifar; do
    mkdir -p "$ROOT/$stem"
    for f in manifest.json train.json; do
      [ -f "$ROOT/parts/$stem.$f" ] && cp "$ROOT/parts/$stem.$f" "$ROOT/$stem/$f"
    done
    [ -f "$ROOT/$stem/manifest.json" ] || { echo "$stem: manifest not staged yet"; continue; }
    want=$(python3 -c "import json,sys; print([a['sha256'] for a in json.load(open(sys.argv[1]))['artifacts'] if a['path']=='model.onnx'][0])" "$ROOT/$stem/manifest.json")
    [ -f "$ROOT/$stem/model.onnx" ] && [ "$(sha256sum < "$ROOT/$stem/model.onnx" | cut -d' ' -f1)" = "$want" ] && { echo "$stem: model.onnx ok"; continue; }
    if [ -f "$ROOT/parts/$stem.pack.parts" ]; then  # stage-packs.sh: the packed model in pieces
      read -r k _ sha < "$ROOT/parts/$stem.pack.parts"
      [ "$(ls "$ROOT/parts/$stem.pack.part."* | wc -l)" = "$k" ] || { echo "$stem: pack pieces missing"; continue; }
      cat "$ROOT/parts/$stem.pack.part."* > "$ROOT/$stem.pack"
      [ "$(sha256sum < "$ROOT/$stem.pack" | cut -d' ' -f1)" = "$sha" ] || { echo "$stem: pack sha256 differs"; continue; }
      python3 tools/gpu-study/pack_model.py unpack "$ROOT/$stem.pack" "$ROOT/$stem/model.onnx" && rm "$ROOT/$stem.pack"
    elif ls "$ROOT/parts/$stem.model.onnx.part."* >/dev/null 2>&1; then
      cat "$ROOT/parts/$stem.model.onnx.part."* > "$ROOT/$stem/model.onnx"
    else echo "$stem: no model parts staged yet"; continue; fi
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
  local out="$ROOT/results/$name-${stem//\//-}-$CARD.json"
  [ $# -gt 0 ] || set -- "${PROFILE_CONFIGS[@]}"
  # shellcheck disable=SC2086  # PROFILE_ARGS: extra flags, one a word (--check 512)
  timeout -s TERM "${PROFILE_BUDGET:-${BUDGET:-540}}" python3 tools/gpu-study/profile_kernels.py --artifacts "$ROOT/$stem" --out "$out" \
    ${PROFILE_ARGS:-} "$@" || echo "profile exit $?"
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
  rand) stage; nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv,noheader
        for stem in orig cifar; do
          mkdir -p "$ROOT/rand/$stem"
          [ -f "$ROOT/rand/$stem/model.onnx" ] || python3 tools/gpu-study/random_weights.py fill "$ROOT/parts/$stem.template.onnx" "$ROOT/rand/$stem/model.onnx"
        done
        { python3 -m pytest -q -p no:cacheprovider tests/unit/test_torch_fuse.py -ra
          EDGEBENCH_GPU_MODELS="$ROOT/rand" timeout -s TERM "${TEST_BUDGET:-200}" python3 -m pytest -q -p no:cacheprovider \
            tests/unit/test_torch_gpu.py -k "lean or chunked" -ra; } 2>&1 | tee "$OUTDIR/pytest-rand.log" || true
        PROFILE_ARGS="--check 256" profile rand/cifar profile-rand torch-fused-compile-pipe:fp16:1 \
          torch-fused-compile-lean:fp16:1 ;;
  b1) stage; bench gpu-fused-b1 "$2"
      PROFILE_ARGS="--check 256" profile "$2" profile-b1 torch-fused-compile-pipe:fp16:1 torch-fused-compile-lean:fp16:1 \
        torch-fused-compile-lean:bf16:1 ;;
  orig-pipe) stage; bench gpu-fused-orig-pipe orig
      PROFILE_ARGS="--check 512" profile orig profile-orig-pipe torch-fused-compile-lean:fp16:1 \
        torch-fused-compile-pipe:fp16:32768:chunk=8192 torch-fused-compile-lean:fp16:32768:chunk=8192 ;;
  all) "$0" test; for stem in orig cifar; do "$0" torch "$stem"; "$0" cpu "$stem"; "$0" profile "$stem"
         "$0" fused "$stem"; done ;;
  *) echo "usage: $0 stage | test | torch STEM | cpu STEM | profile STEM | fused STEM | pipe STEM | rand | b1 STEM | orig-pipe | all" >&2
     exit 2 ;;
esac
