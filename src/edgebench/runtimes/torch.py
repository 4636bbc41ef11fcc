"""PyTorch backend: model.onnx converted with onnx2torch, run eagerly or through torch.compile.

For the GPU inference-time study (H100); on a CPU it runs too. CUDA work is synchronized before
`infer` returns. Input stays NHWC float32 0..255: the converted graph keeps the ONNX model's layout.
"""
from __future__ import annotations

from typing import Dict, Optional

import numpy as np

from edgebench.runtimes.base import Runtime


class TorchFromOnnx(Runtime):
    name = "torch"
    artifact_format = "onnx"
    precisions = ("fp32", "fp16", "bf16")
    device = "gpu"

    @classmethod
    def artifact_for(cls, precision: str):
        return "onnx", "fp32"

    @classmethod
    def _check_impl(cls) -> Optional[str]:
        import onnx2torch  # noqa: F401
        import torch  # noqa: F401

        return None

    @classmethod
    def versions(cls) -> Dict[str, str]:
        import torch

        return {"torch": torch.__version__, "cuda": str(torch.version.cuda)}

    def _load_impl(self) -> None:
        import onnx
        import torch
        from onnx2torch import convert

        if self.threads is not None:
            torch.set_num_threads(self.threads)
        self.torch = torch
        self.dev = torch.device(self.options.get("device") or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.dtype = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[self.precision]
        model = convert(onnx.load(str(self.artifact))).eval().to(self.dev)
        if self.precision != "fp32":
            model = model.to(self.dtype)
        if self.dev.type == "cuda":
            torch.backends.cudnn.benchmark = True
            torch.backends.cuda.matmul.allow_tf32 = bool(self.options.get("tf32", True))
            torch.backends.cudnn.allow_tf32 = bool(self.options.get("tf32", True))
        if self.options.get("compile"):
            model = torch.compile(model, mode=self.options.get("compile_mode", "max-autotune-no-cudagraphs"))
        self.model = model

    def _infer_impl(self, x: np.ndarray) -> np.ndarray:
        torch = self.torch
        with torch.inference_mode():
            t = torch.from_numpy(x).to(self.dev, non_blocking=True).to(self.dtype)
            y = self.model(t).float().cpu().numpy()  # .cpu() synchronizes
        return y

    def _close_impl(self) -> None:
        del self.model
