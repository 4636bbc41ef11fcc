#!/usr/bin/env bash
# Lay out the GPU study's trained inputs for the lent machine in three calls' worth (one call carries at most
# 64 MiB with the tree): each stem's model.onnx packed losslessly (pack_model.py: ~72 MB instead of 85 MB), the
# packs and the CIFAR-10 test split cut into .stage/p1 .. p3 (run's carry names one of them and .whl), so that
# after p2 the first stem is whole and after p3 the second. run.sh's stage step reassembles, unpacks and checks
# each model.onnx against its manifest's sha256.
# Usage: tools/gpu-study/stage-packs.sh ORIG_RUN_DIR CIFAR_RUN_DIR TEST_ZIP   (run dirs: train + export output)
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${PYTHON:-.venv/bin/python}
CAP=${CALL_BYTES:-51500000}  # carried bytes a call, under 64 MiB less the tree
rm -rf .stage && mkdir -p .stage/p1 .stage/p2 .stage/p3 .stage/p4 /tmp/stage-packs
cp "$3" .stage/p1/cifar10-test.zip
for pair in "orig:$1" "cifar:$2"; do
  stem=${pair%%:*} dir=${pair#*:}
  cp "$dir/manifest.json" ".stage/p1/$stem.manifest.json"
  cp "$dir/train.json" ".stage/p1/$stem.train.json"
  $PY tools/gpu-study/random_weights.py strip "$dir/model.onnx" ".stage/p1/$stem.template.onnx"
  $PY tools/gpu-study/pack_model.py pack "$dir/model.onnx" "/tmp/stage-packs/$stem.pack"
done
# one stream (orig, then cifar), cut where each call's room ends; each piece keeps its stem's name
call=1 room=$((CAP - $(du -cb .stage/p1 | tail -1 | cut -f1)))
for stem in orig cifar; do
  f=/tmp/stage-packs/$stem.pack size=$(stat -c %s "/tmp/stage-packs/$stem.pack") off=0 k=0
  while [ "$off" -lt "$size" ]; do
    n=$(( size - off < room ? size - off : room ))
    dd if="$f" of=".stage/p$call/$stem.pack.part.0$k" bs=1M iflag=skip_bytes,count_bytes skip="$off" count="$n" status=none
    off=$((off + n)) k=$((k + 1)) room=$((room - n))
    if [ "$room" -le 0 ]; then call=$((call + 1)) room=$CAP; fi
  done
  echo "$k $size $(sha256sum < "$f" | cut -d' ' -f1)" > ".stage/p$call/$stem.pack.parts"
done
rm -rf /tmp/stage-packs
du -sb .stage/p*
