"""In-image test for x86-cuda (runs after `edgebench env --check`, with --gpus all)."""
import json
import os
import sys

expect = json.loads(os.environ.get("EDGEBENCH_EXPECT_VERSIONS", "{}"))
errors = []

import onnxruntime  # noqa: E402
import polygraphy  # noqa: E402
import tensorflow as tf  # noqa: E402
import tensorrt  # noqa: E402
from cuda import cudart  # noqa: E402
from polygraphy.backend.trt import CreateConfig, EngineBytesFromNetwork  # noqa: E402,F401

from edgebench.engines import versions  # noqa: E402

system = versions.system_versions()  # the image's /usr/local/cuda, not cuda-python's constant
found = {"tensorflow": tf.__version__, "tensorrt": tensorrt.__version__, "onnxruntime": onnxruntime.__version__,
         "cuda": system.get("cuda") or tf.sysconfig.get_build_info().get("cuda_version", ""),
         "polygraphy": polygraphy.__version__, "cudnn": system.get("cudnn") or ""}
if not hasattr(cudart, "cudaGraphInstantiateWithFlags"):
    errors.append("cuda-python lacks cudaGraphInstantiateWithFlags (the tensorrt backend's CUDA graphs)")
for name, want in expect.items():
    if name in found and not found[name].startswith(want):
        errors.append("%s %s != %s" % (name, found[name], want))
providers = onnxruntime.get_available_providers()
gpus = tf.config.list_physical_devices("GPU")
print(json.dumps({"python": sys.version.split()[0], "gpus": [g.name for g in gpus], "ort_providers": providers,
                  **found}))
if "CUDAExecutionProvider" not in providers:
    errors.append("onnxruntime-gpu lacks CUDAExecutionProvider")
else:
    # "available" only means the provider library is there: a session must really start on it (a CUDA 11 build
    # on this CUDA 12 base, or a cuDNN 9 build on cuDNN 8.9, falls back to the CPU with a log line only)
    import base64  # noqa: E402

    import numpy as np  # noqa: E402

    # an ONNX graph y = Relu(x), x: float[1, 4] (opset 13), serialized: the image needs no onnx package
    model = base64.b64decode("CAg6PwoMCgF4EgF5IgRSZWx1EgVwcm9iZVoTCgF4Eg4KDAgBEggKAggBCgIIBGITCgF5Eg4KDAgBEggKAggBCgIIBEIECgAQDQ==")
    sess = onnxruntime.InferenceSession(model, providers=["CUDAExecutionProvider"])
    active = sess.get_providers()
    print(json.dumps({"ort_session_providers": active}))
    if active[0] != "CUDAExecutionProvider":
        errors.append("onnxruntime %s runs a CUDA session on %s: its CUDA/cuDNN do not match the image's"
                      % (onnxruntime.__version__, active[0]))
    sess.run(None, {"x": np.ones((1, 4), np.float32)})
if not gpus:
    errors.append("TensorFlow sees no GPU (was the container started with --gpus all?)")
if errors:
    sys.exit("; ".join(errors))
print("x86-cuda image test ok")
