"""In-image test for jetson-jp512 (runs after `edgebench env --check`, with --runtime nvidia on the Orin)."""
import json
import os
import subprocess
import sys

expect = json.loads(os.environ.get("EDGEBENCH_EXPECT_VERSIONS", "{}"))
errors = []
if sys.version_info[:2] != (3, 8):
    errors.append("python %s, expected 3.8" % sys.version.split()[0])

# L4T release from the first line of /etc/nv_tegra_release: "# R35 (release), REVISION: 4.1, ..."
l4t = os.environ.get("EDGEBENCH_EXPECT_L4T", "35.4.1")
try:
    first = open("/etc/nv_tegra_release").readline()
    major = first.split("R", 1)[1].split(" ", 1)[0]
    rev = first.split("REVISION:", 1)[1].split(",", 1)[0].strip()
    if "%s.%s" % (major, rev) != l4t:
        errors.append("L4T %s.%s, expected %s" % (major, rev, l4t))
except (OSError, IndexError) as exc:
    errors.append("cannot read /etc/nv_tegra_release: %s" % exc)

if not os.path.exists("/usr/src/tensorrt/bin/trtexec"):
    errors.append("trtexec missing at /usr/src/tensorrt/bin/trtexec")

import jtop  # noqa: E402  (jetson-stats: the board state through the host's jtop socket)
import onnxruntime  # noqa: E402
import openvino  # noqa: E402
import polygraphy  # noqa: E402
import tensorflow as tf  # noqa: E402
import tensorrt  # noqa: E402
from cuda import cudart  # noqa: E402  (cuda-python 11.8: `cuda.cudart`)
from polygraphy.backend.trt import CreateConfig, EngineBytesFromNetwork  # noqa: E402,F401

from edgebench.engines import versions  # noqa: E402

try:
    from importlib import metadata
    cuda_python = metadata.version("cuda-python")
except Exception as exc:  # noqa: BLE001
    cuda_python = "unknown (%s)" % exc
system = versions.system_versions()  # JetPack's /usr/local/cuda and cuDNN header, not cuda-python's constant
found = {"tensorflow": tf.__version__, "tensorrt": tensorrt.__version__, "onnxruntime": onnxruntime.__version__,
         "polygraphy": polygraphy.__version__, "cuda-python": cuda_python, "cuda": system.get("cuda") or "",
         "cudnn": system.get("cudnn") or "", "openvino": openvino.__version__.split("-")[0],
         "jetson-stats": jtop.__version__}
if not hasattr(cudart, "cudaGraphInstantiateWithFlags"):
    errors.append("cuda-python %s lacks cudaGraphInstantiateWithFlags (the tensorrt backend's CUDA graphs)"
                  % cuda_python)
if not found["cuda"]:
    errors.append("no system CUDA version (%s/version.json, libcudart)" % versions.cuda_root())
for name, want in expect.items():
    # TF reports 2.12.0 for the 2.12.0+nv23.06 wheel; TensorRT 8.5.2.2 for 8.5.2
    if name in found and not (found[name] == want or found[name].startswith(want.split("+")[0])):
        errors.append("%s %s != %s" % (name, found[name], want))
gpus = tf.config.list_physical_devices("GPU")
print(json.dumps({"python": sys.version.split()[0], "gpus": [g.name for g in gpus], **found}))
if not gpus:
    errors.append("TensorFlow sees no GPU (was the container started with --runtime nvidia?)")
if errors:
    sys.exit("; ".join(errors))
subprocess.run(["/usr/src/tensorrt/bin/trtexec", "--help"], stdout=subprocess.DEVNULL, check=False)
print("jetson-jp512 image test ok")
