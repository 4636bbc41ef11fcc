#!/usr/bin/env bash
# The GPU inference-time study, run on the lent H100/H200 machine (no TensorFlow, no Docker there).
# Inputs travel in .stage/ (ignored by git): model.onnx in parts (the call size is capped), manifest.json,
# train.json, and a CIFAR-10 zip with the test split. Results land in $OUT.
set -euo pipefail
cd "$(dirname "$0")/../.."
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
export PYTHONPATH=/tmp/site:$PWD/src PYTHONUNBUFFERED=1
mkdir -p /root/stage/art
cp .stage/*.part.* /root/stage/ 2>/dev/null || true
if ls /root/stage/model.onnx.part.* >/dev/null 2>&1 && [ "${ASSEMBLE:-1}" = 1 ]; then
  cat /root/stage/model.onnx.part.* > /root/stage/art/model.onnx
fi
cp .stage/manifest.json .stage/train.json /root/stage/art/ 2>/dev/null || true
[ -f .stage/cifar10-test.zip ] && cp .stage/cifar10-test.zip /root/stage/
sha256sum /root/stage/art/model.onnx
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv,noheader
python3 -m edgebench env | head -60
python3 -m edgebench bench --artifacts /root/stage/art --suite src/edgebench/suites/gpu-torch.yaml \
  --data /root/stage/cifar10-test.zip --reference onnxruntime --device "${DEVICE_NAME:-h100}" \
  --out "${OUT:-/tmp}/gpu-torch-${DEVICE_NAME:-h100}.json"
