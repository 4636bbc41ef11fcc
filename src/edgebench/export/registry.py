"""The artifacts `edgebench export` can write, in export order, and the exporter class of each."""
from __future__ import annotations

from typing import Dict, Iterable, List, Optional, Tuple, Type

from edgebench.contracts.vocabulary import FORMATS
from edgebench.export.base import Exporter, ExportOptionError, UnknownArtifactError

DEFAULT_FORMATS = ("keras", "savedmodel", "onnx", "tflite", "openvino")  # tensorrt is built on the device

#: artifact name -> "module:Class", in export order (dependencies first)
EXPORTERS: Dict[str, str] = {
    "savedmodel-fp32": "edgebench.export.savedmodel:SavedModelExporter",
    "onnx-fp32": "edgebench.export.onnx:OnnxExporter",
    "onnx-int8": "edgebench.export.onnx_int8:OnnxInt8Exporter",
    "tflite-fp32": "edgebench.export.tflite:TfliteFp32Exporter",
    "tflite-fp16": "edgebench.export.tflite:TfliteFp16Exporter",
    "tflite-int8": "edgebench.export.tflite:TfliteInt8Exporter",
    "tensorrt-fp32": "edgebench.export.tensorrt:TensorRTFp32Exporter",
    "tensorrt-fp16": "edgebench.export.tensorrt:TensorRTFp16Exporter",
    "tensorrt-int8": "edgebench.export.tensorrt:TensorRTInt8Exporter",
    "openvino-fp32": "edgebench.export.openvino:OpenVINOExporter",
    "openvino-int8": "edgebench.export.openvino:OpenVINOInt8Exporter",
}
REQUIRES: Dict[str, Tuple[str, ...]] = {"onnx-int8": ("onnx-fp32",), "tensorrt-fp32": ("onnx-fp32",),
                                         "tensorrt-fp16": ("onnx-fp32",), "tensorrt-int8": ("onnx-fp32",),
                                         "openvino-fp32": ("onnx-fp32",), "openvino-int8": ("onnx-fp32",)}
ARTIFACTS = ("keras-fp32",) + tuple(EXPORTERS)


def exporters() -> List[str]:
    return list(ARTIFACTS)


def exporter_class(name: str) -> Type[Exporter]:
    from edgebench.util import load_object

    try:
        target = EXPORTERS[name]
    except KeyError:
        raise UnknownArtifactError(f"unknown artifact {name!r}; known: {', '.join(EXPORTERS)}") from None
    return load_object(target)


def filename(name: str) -> str:
    """The artifact's file name relative to the output folder (the class default)."""
    if name == "keras-fp32":
        return "model.keras"
    try:
        return exporter_class(name).filename
    except (KeyError, ImportError, AttributeError):
        return name


def select(formats: Optional[Iterable[str]] = None) -> List[str]:
    """Artifact names, in export order, for a list of formats (`onnx`, `tflite`...), artifact names
    (`tflite-int8`) or `all`; inputs an artifact needs (model.onnx for INT8 ONNX) are added."""
    wanted = set()
    for item in (formats or DEFAULT_FORMATS):
        for part in str(item).split(","):
            part = part.strip().lower()
            if not part:
                continue
            if part == "all":
                wanted.update(ARTIFACTS)
            elif part in FORMATS:
                wanted.update(a for a in ARTIFACTS if a.split("-")[0] == part)
            elif part in ARTIFACTS:
                wanted.add(part)
            else:
                raise ExportOptionError(f"unknown format {part!r}; choose from {', '.join(FORMATS)}, "
                                        f"{', '.join(ARTIFACTS)} or all")
    for name in list(wanted):
        wanted.update(REQUIRES.get(name, ()))
    return [a for a in ARTIFACTS if a in wanted]
