"""In-image test for x86-cpu (runs after `edgebench env --check`): pinned versions really installed."""
import json
import os
import sys

expect = json.loads(os.environ.get("EDGEBENCH_EXPECT_VERSIONS", "{}"))
errors = []
assert sys.version_info[:2] == (3, 11), sys.version

import numpy  # noqa: E402
import onnx  # noqa: E402
import onnxruntime  # noqa: E402
import openvino  # noqa: E402
import tensorflow as tf  # noqa: E402
import tf2onnx  # noqa: E402  (ONNX export inside the image)

found = {"tensorflow": tf.__version__, "onnxruntime": onnxruntime.__version__, "tf2onnx": tf2onnx.__version__,
         "onnx": onnx.__version__,
         "openvino": openvino.__version__.split("-")[0]}
if "CPU" not in openvino.Core().available_devices:
    errors.append("OpenVINO sees no CPU device")
for name, want in expect.items():
    if name in found and found[name] != want:
        errors.append(f"{name} {found[name]} != {want}")
print(json.dumps({"python": sys.version.split()[0], "numpy": numpy.__version__, **found,
                  "onnxruntime_providers": onnxruntime.get_available_providers()}))
# one tiny inference per framework: the wheels load and run on this CPU
x = tf.ones((1, 4))
assert float(tf.reduce_sum(tf.keras.layers.Dense(2, kernel_initializer="ones")(x))) == 8.0
if errors:
    sys.exit("version mismatch: " + "; ".join(errors))
print("x86-cpu image test ok")
