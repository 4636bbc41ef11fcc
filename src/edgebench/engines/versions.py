"""CUDA, cuDNN and TensorRT versions as the system has them, never a Python binding's compile-time constant.

cuda-python's `cudaRuntimeGetVersion()` answers the version the binding was built for (11.8.2 says 11080 even
with no driver at all), so on JetPack 5.1.2 (CUDA 11.4) it would put "11.8" into every cache key and result.
The system's versions come from, in order:

  CUDA     $CUDA_HOME (or $CUDA_PATH, else /usr/local/cuda)/version.json ("cuda_cudart", else "cuda": every
           toolkit since 11.1, JetPack 5's 11.4 included), else version.txt ("CUDA Version 10.2.89", older
           toolkits), else cudaRuntimeGetVersion() of the libcudart.so that the dynamic loader finds (ctypes: the
           library's own answer, which is the system's runtime)
  cuDNN    cudnn_version.h (cuDNN 8/9; cudnn.h for 7) in the usual include folders, else cudnnGetVersion()
           of libcudnn.so (ctypes)
  TensorRT the `tensorrt` module's __version__ (it is the system's: JetPack and NGC install it from .debs)

Each answer says where it came from ("source"), so a result can tell a header from a library. Nothing here
imports a framework; the ctypes fallbacks load a library but initialise no device.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import json
import os
import re
from pathlib import Path
from typing import Callable, Dict, Iterable, Mapping, Optional, Sequence

CUDA_ROOT_DEFAULT = "/usr/local/cuda"
CUDNN_HEADER_DIRS = ("/usr/include", "/usr/include/aarch64-linux-gnu", "/usr/include/x86_64-linux-gnu",
                     "/usr/local/cuda/include")
CUDNN_HEADERS = ("cudnn_version.h", "cudnn_version_v9.h", "cudnn_version_v8.h", "cudnn.h")
CUDART_LIBS = ("libcudart.so", "libcudart.so.12", "libcudart.so.11.0", "libcudart.so.10.2")
CUDNN_LIBS = ("libcudnn.so", "libcudnn.so.9", "libcudnn.so.8")


def cuda_root(environ: Optional[Mapping[str, str]] = None) -> Path:
    env = os.environ if environ is None else environ
    return Path(env.get("CUDA_HOME") or env.get("CUDA_PATH") or CUDA_ROOT_DEFAULT)


def major_minor(version: str) -> str:
    """'11.4.298' -> '11.4' (the part an engine depends on); '' stays ''."""
    parts = str(version or "").split(".")
    return ".".join(parts[:2]) if len(parts) >= 2 and all(p.isdigit() for p in parts[:2]) else ""


def from_packed(v: int) -> str:
    """cudaRuntimeGetVersion's integer (11040) -> '11.4'."""
    return f"{int(v) // 1000}.{int(v) % 1000 // 10}"


def cuda_from_version_json(path: Path) -> Optional[Dict[str, str]]:
    """The toolkit's version.json: {"cuda": {"name": "CUDA SDK", "version": "11.4.19"}, "cuda_cudart":
    {"name": "CUDA Runtime (cudart)", "version": "11.4.298"}, ...} -> {"cuda": "11.4", "cudart": ..., ...}."""
    try:
        doc = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(doc, dict):
        return None
    cudart = (doc.get("cuda_cudart") or {}).get("version") if isinstance(doc.get("cuda_cudart"), dict) else None
    toolkit = (doc.get("cuda") or {}).get("version") if isinstance(doc.get("cuda"), dict) else None
    version = major_minor(cudart or "") or major_minor(toolkit or "")
    if not version:
        return None
    out = {"cuda": version, "source": str(path)}
    if cudart:
        out["cudart"] = str(cudart)
    if toolkit:
        out["toolkit"] = str(toolkit)
    return out


def cuda_from_version_txt(path: Path) -> Optional[Dict[str, str]]:
    """version.txt of toolkits before 11.1: 'CUDA Version 10.2.89'."""
    try:
        m = re.search(r"CUDA Version\s+(\d+\.\d+(?:\.\d+)?)", Path(path).read_text())
    except OSError:
        return None
    return {"cuda": major_minor(m.group(1)), "toolkit": m.group(1), "source": str(path)} if m else None


def _load_first(names: Iterable[str], extra_dirs: Sequence[Path] = ()) -> Optional[ctypes.CDLL]:
    candidates = [str(d / n) for d in extra_dirs for n in names] + list(names)
    found = ctypes.util.find_library(next(iter(names)).split(".so")[0][3:])
    if found:
        candidates.append(found)
    for name in candidates:
        try:
            return ctypes.CDLL(name)
        except OSError:
            continue
    return None


def cuda_from_library(loader: Callable[[], Optional[ctypes.CDLL]]) -> Optional[Dict[str, str]]:
    """cudaRuntimeGetVersion() of the system's libcudart (its own version; needs no driver)."""
    lib = loader()
    if lib is None:
        return None
    value = ctypes.c_int(0)
    try:
        err = lib.cudaRuntimeGetVersion(ctypes.byref(value))
    except AttributeError:
        return None
    if err != 0 or value.value <= 0:
        return None
    return {"cuda": from_packed(value.value),
            "source": f"cudaRuntimeGetVersion of {getattr(lib, '_name', 'libcudart')}"}


def cuda_version(root: Optional[Path] = None, loader: Optional[Callable[[], Optional[ctypes.CDLL]]] = None
                 ) -> Optional[Dict[str, str]]:
    """The system's CUDA: version.json, else version.txt under `root`, else the loaded libcudart."""
    root = Path(root) if root is not None else cuda_root()
    lib_dirs = [root / "lib64", root / "lib", root / "targets" / "aarch64-linux" / "lib"]
    loader = loader or (lambda: _load_first(CUDART_LIBS, lib_dirs))
    return (cuda_from_version_json(root / "version.json") or cuda_from_version_txt(root / "version.txt")
            or cuda_from_library(loader))


def cudnn_from_header(path: Path) -> Optional[Dict[str, str]]:
    """'#define CUDNN_MAJOR 8' / CUDNN_MINOR / CUDNN_PATCHLEVEL -> {"cudnn": "8.6.0", "source": path}."""
    try:
        text = Path(path).read_text(errors="replace")
    except OSError:
        return None
    parts = [re.search(rf"^\s*#\s*define\s+CUDNN_{k}\s+(\d+)", text, re.M) for k in ("MAJOR", "MINOR", "PATCHLEVEL")]
    if not all(parts):
        return None
    return {"cudnn": ".".join(m.group(1) for m in parts if m), "source": str(path)}


def cudnn_from_packed(v: int) -> str:
    """cudnnGetVersion(): 8600 -> '8.6.0' (cuDNN 8: M*1000 + m*100 + p); 90100 -> '9.1.0' (cuDNN 9: M*10000+...)."""
    v = int(v)
    if v >= 90000:
        return f"{v // 10000}.{v % 10000 // 100}.{v % 100}"
    return f"{v // 1000}.{v % 1000 // 100}.{v % 100}"


def cudnn_version(header_dirs: Optional[Sequence[str]] = None,
                  loader: Optional[Callable[[], Optional[ctypes.CDLL]]] = None) -> Optional[Dict[str, str]]:
    for d in CUDNN_HEADER_DIRS if header_dirs is None else header_dirs:
        for name in CUDNN_HEADERS:
            found = cudnn_from_header(Path(d) / name)
            if found:
                return found
    lib = (loader or (lambda: _load_first(CUDNN_LIBS)))()
    if lib is None:
        return None
    try:
        lib.cudnnGetVersion.restype = ctypes.c_size_t
        value = int(lib.cudnnGetVersion())
    except AttributeError:
        return None
    return {"cudnn": cudnn_from_packed(value), "source": f"cudnnGetVersion of {getattr(lib, '_name', 'libcudnn')}"} \
        if value > 0 else None


def tensorrt_version() -> Optional[str]:
    try:
        import tensorrt  # the system's: JetPack / NGC install it from NVIDIA's packages
    except ImportError:
        return None
    return str(getattr(tensorrt, "__version__", "")) or None


def system_versions(root: Optional[Path] = None, header_dirs: Optional[Sequence[str]] = None,
                    cudart_loader=None, cudnn_loader=None, with_tensorrt: bool = True) -> Dict[str, Optional[str]]:
    """{"cuda", "cuda_source", "cudnn", "cudnn_source", "tensorrt"}: each None where the system has none."""
    cuda = cuda_version(root, cudart_loader) or {}
    cudnn = cudnn_version(header_dirs, cudnn_loader) or {}
    out: Dict[str, Optional[str]] = {"cuda": cuda.get("cuda"), "cuda_source": cuda.get("source"),
                                     "cudnn": cudnn.get("cudnn"), "cudnn_source": cudnn.get("source")}
    if cuda.get("cudart"):
        out["cudart"] = cuda["cudart"]
    if with_tensorrt:
        out["tensorrt"] = tensorrt_version()
    return out
