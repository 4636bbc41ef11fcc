#!/usr/bin/env bash
# Lay out the GPU study's inputs for the lent machine, where one call carries at most 64 MiB with the tree:
# .stage/c1 .. c4, one folder a call (run's carry names one of them and .whl), the 85 MB model.onnx of each stem
# in two parts, the test split of CIFAR-10 beside the second part of the first stem.
# Usage: tools/gpu-study/split-stage.sh ORIG_RUN_DIR CIFAR_RUN_DIR TEST_ZIP   (run dirs: train + export output)
set -euo pipefail
cd "$(dirname "$0")/../.."
PART=${PART_BYTES:-52000000}
rm -rf .stage && mkdir -p .stage/c1 .stage/c2 .stage/c3 .stage/c4
i=1
for pair in "orig:$1" "cifar:$2"; do
  stem=${pair%%:*} dir=${pair#*:}
  split -b "$PART" -d -a 2 "$dir/model.onnx" "/tmp/$stem.model.onnx.part."
  mv "/tmp/$stem.model.onnx.part.00" ".stage/c$i/"
  mv "/tmp/$stem.model.onnx.part."* ".stage/c$((i + 1))/"
  cp "$dir/manifest.json" ".stage/c$((i + 1))/$stem.manifest.json"
  cp "$dir/train.json" ".stage/c$((i + 1))/$stem.train.json"
  i=$((i + 2))
done
cp "$3" .stage/c2/cifar10-test.zip
du -sh .stage/c*
