"""One home for each fact the families share. Import from here; never re-spell these elsewhere.

Nothing here imports a framework: this module is safe for `--help`, `invoke --list` and Python 3.8.
"""
from __future__ import annotations

from typing import Dict, Tuple

from edgebench.contracts.errors import UnknownNameError

#: every model takes float32 NHWC pixels 0..255 of this shape (batch dimension excluded)
INPUT_SHAPE: Tuple[int, int, int] = (32, 32, 3)
#: input tensor name in the SavedModel signature, the ONNX graph and TensorRT engines
INPUT_NAME = "image"
#: output name of the SavedModel signature
OUTPUT_NAME = "logits"
#: CIFAR-10 classes: a model's output width must equal this for the CIFAR-10 benchmark
NUM_CLASSES = 10

#: artifact formats the exporter writes and the manifest records
FORMATS: Tuple[str, ...] = ("keras", "savedmodel", "onnx", "tflite", "tensorrt", "openvino")
#: numeric precisions (bf16: torch and openvino, cast at run time; no exporter writes a bf16 artifact)
PRECISIONS: Tuple[str, ...] = ("fp32", "fp16", "bf16", "int8")
#: precisions an exporter writes an artifact for (bf16 is cast at run time by the torch backend)
EXPORT_PRECISIONS: Tuple[str, ...] = ("fp32", "fp16", "int8")
#: parity against the Keras model, per precision: max_rel_diff = max|artifact - keras| / max|keras|,
#: min_top1_agreement in 0..1. Every precision has one (bf16 keeps 8 mantissa bits: ~4e-3 per op).
PARITY_THRESHOLDS: Dict[str, Dict[str, float]] = {
    "fp32": {"max_rel_diff": 1e-4},
    "fp16": {"max_rel_diff": 5e-3},
    "bf16": {"max_rel_diff": 3e-2, "min_top1_agreement": 0.99},
    "int8": {"min_top1_agreement": 0.98},
}

#: backend -> (artifact format it runs, where its arithmetic runs: "cpu" | "gpu")
BACKENDS: Dict[str, Tuple[str, str]] = {
    "keras": ("keras", "cpu"),
    "keras-call": ("keras", "cpu"),
    "keras-gpu": ("keras", "gpu"),  # model.predict with TensorFlow on the GPU (the seed study's GPU rows)
    "savedmodel": ("savedmodel", "cpu"),
    "savedmodel-xla": ("savedmodel", "cpu"),
    "tflite": ("tflite", "cpu"),
    "onnxruntime": ("onnx", "cpu"),
    "onnxruntime-cuda": ("onnx", "gpu"),
    "onnxruntime-trt": ("onnx", "gpu"),
    "tensorrt": ("onnx", "gpu"),
    "tftrt": ("savedmodel", "gpu"),
    "openvino": ("openvino", "cpu"),             # OpenVINO IR, LATENCY hint, one synchronous request
    "openvino-throughput": ("openvino", "cpu"),  # THROUGHPUT hint, the batch over async infer requests
    "torch": ("onnx", "gpu"),             # onnx2torch module, eager (the GPU study's baseline)
    "torch-cl": ("onnx", "gpu"),          # channels-last
    "torch-graph": ("onnx", "gpu"),       # CUDA-graph capture and replay
    "torch-graph-tf32": ("onnx", "gpu"),  # CUDA graph with TF32 matmuls/convolutions
    "torch-compile": ("onnx", "gpu"),     # torch.compile (default mode)
    "torch-compile-ro": ("onnx", "gpu"),  # torch.compile(mode="reduce-overhead"): compiled + CUDA graphs
    "torch-compute": ("onnx", "gpu"),     # compute only: input kept on the GPU (like trtexec --noDataTransfers)
    "torch-compile-graph": ("onnx", "gpu"),    # torch.compile, then captured in a CUDA graph and replayed
    "torch-compile-compute": ("onnx", "gpu"),  # the same, compute only (input kept on the GPU)
    "torch-fused-graph": ("onnx", "gpu"),      # fuse: cudnn (conv+bias+[add]+ReLU one cuDNN call), CUDA graph
    "torch-fused-compute": ("onnx", "gpu"),    # the same, compute only
    "torch-fused-compile-graph": ("onnx", "gpu"),    # fuse: cudnn, then torch.compile captured in a CUDA graph
    "torch-fused-compile-compute": ("onnx", "gpu"),  # the same, compute only
    "torch-fused-compile-pipe": ("onnx", "gpu"),  # fused + compiled + graphs, copies overlapped / inside the graph
    "torch-fused-compile-lean": ("onnx", "gpu"),  # the same + batch-1 passes (downsample merged, head, stem pad)
}
#: the backend that runs each format in parity checks and as a reference
FORMAT_BACKEND: Dict[str, str] = {"keras": "keras-call", "savedmodel": "savedmodel", "onnx": "onnxruntime",
                                  "tflite": "tflite", "tensorrt": "tensorrt",
                                  "openvino": "openvino"}
#: the default reference backend (the Keras model itself) and the one used where TensorFlow is absent
REFERENCE_BACKEND = "keras-call"
REFERENCE_BACKEND_NO_TF = "onnxruntime"

#: environment a launcher sets in a benchmark's container and the fingerprint reads back into the results
IMAGE_ENV = "EDGEBENCH_IMAGE"                # the image reference the container runs
IMAGE_ID_ENV = "EDGEBENCH_IMAGE_ID"          # its sha256 image id
IMAGE_DIGEST_ENV = "EDGEBENCH_IMAGE_DIGEST"  # repo@sha256:... when pulled or published
TARGET_ENV = "EDGEBENCH_TARGET"              # the containers/<target> it was built from
GIT_REVISION_ENV = "EDGEBENCH_GIT_REVISION"  # the kit's revision where .git is not mounted

#: results-row / manifest keys more than one family reads
RESOLVED_THREADS_KEY = "resolved_threads"   # the thread count a backend really used (read back)
TF32_EFFECTIVE_KEY = "tf32_effective"       # whether TF32 arithmetic was in effect
#: what training keeps in a run folder to resume (never read by a benchmark: not copied to a device)
CHECKPOINTS_DIRNAME = "checkpoints"
TRAIN_STATE_FILE = "train_state.json"
#: images an INT8 calibration uses unless told otherwise (TensorRT, ONNX, OpenVINO and TFLite exporters)
CALIB_IMAGES_DEFAULT = 500

#: the kit's writable cache folder, beside the results file (in a container: /results/.edgebench-cache)
CACHE_DIRNAME = ".edgebench-cache"
#: environment variables naming the writable caches: decoded data, TensorRT engines
DATA_CACHE_ENV = "EDGEBENCH_CACHE"
ENGINE_CACHE_ENV = "EDGEBENCH_ENGINE_CACHE"
#: TensorFlow's C++ log level the kit runs it at (1: warnings and errors, no INFO lines), and the variable that
#: overrides it (EDGEBENCH_TF_LOG_LEVEL=0 brings the INFO lines back)
TF_LOG_LEVEL = "1"
TF_LOG_LEVEL_ENV = "EDGEBENCH_TF_LOG_LEVEL"

#: a row whose coefficient of variation (std / mean of its raw latencies) exceeds this is flagged noisy
NOISE_CV_LIMIT = 0.10


def backend_format(backend: str) -> str:
    """The artifact format a backend runs ("onnx" for onnxruntime, ...); KeyError names the known ones."""
    try:
        return BACKENDS[backend][0]
    except KeyError:
        raise UnknownNameError(f"unknown backend {backend!r}; known: {', '.join(BACKENDS)}") from None


#: `edgebench bench` exit status: every row ok (or skipped with a reason) / results written but some rows
#: failed / nothing could be measured (bad request, missing input, a refusal)
EXIT_OK = 0
EXIT_ROWS_FAILED = 3
EXIT_COULD_NOT_RUN = 2
