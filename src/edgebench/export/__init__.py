"""Export a trained `model.keras` to every format the targets need, each checked against Keras.

    from edgebench.export import export_all
    manifest = export_all("artifacts/run/model.keras", data_source="cifar10-jpeg.zip")

writes, next to the model: saved_model/, model.onnx, model.int8.onnx, model_{fp32,fp16,int8}.tflite,
calibration.npy (the INT8 calibration images, for engines built later on a device), engines/ (TensorRT,
only where TensorRT is installed: on the device) and manifest.json. Every artifact is one row with status,
size, sha256, tool versions and parity; a failing format never stops the others, and the caller (the CLI)
exits non-zero when any row failed.

Layout: registry.py (which artifacts, in which order), pipeline.py (the steps), base.py (the Exporter base
with its `_export_impl` hook), one module per format, manifest.py (the typed hand-off file), parity.py.
Importing this package imports no framework: TensorFlow, tf2onnx, ONNX Runtime and TensorRT are
imported by the exporter that needs them.
"""
from __future__ import annotations

from edgebench.contracts.vocabulary import FORMATS
from edgebench.export.base import ExportError, ModelError
from edgebench.export.pipeline import DEFAULT_CALIB_IMAGES, ExportDataError, calibration_set, export_all, parity_set
from edgebench.export.registry import ARTIFACTS, DEFAULT_FORMATS, exporter_class, exporters, select

__all__ = ["export_all", "exporters", "exporter_class", "select", "ExportError", "ExportDataError", "ModelError",
           "DEFAULT_FORMATS", "DEFAULT_CALIB_IMAGES", "ARTIFACTS", "FORMATS", "calibration_set", "parity_set"]
