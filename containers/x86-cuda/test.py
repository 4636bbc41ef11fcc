"""In-image test for x86-cuda (runs after `edgebench env --check`, with --gpus all)."""
import json
import os
import sys

expect = json.loads(os.environ.get("EDGEBENCH_EXPECT_VERSIONS", "{}"))
errors = []

import onnxruntime  # noqa: E402
import tensorflow as tf  # noqa: E402
import tensorrt  # noqa: E402

found = {"tensorflow": tf.__version__, "tensorrt": tensorrt.__version__, "onnxruntime": onnxruntime.__version__,
         "cuda": tf.sysconfig.get_build_info().get("cuda_version", "")}
for name, want in expect.items():
    if name in found and not found[name].startswith(want):
        errors.append("%s %s != %s" % (name, found[name], want))
providers = onnxruntime.get_available_providers()
gpus = tf.config.list_physical_devices("GPU")
print(json.dumps({"python": sys.version.split()[0], "gpus": [g.name for g in gpus], "ort_providers": providers,
                  **found}))
if "CUDAExecutionProvider" not in providers:
    errors.append("onnxruntime-gpu lacks CUDAExecutionProvider")
if not gpus:
    errors.append("TensorFlow sees no GPU (was the container started with --gpus all?)")
if errors:
    sys.exit("; ".join(errors))
print("x86-cuda image test ok")
