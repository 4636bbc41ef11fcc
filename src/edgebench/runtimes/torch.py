"""PyTorch backends: model.onnx, cleaned (onnxgraph/clean.py) and converted with onnx2torch, run on a GPU.

For the GPU inference-time study (H100/H200, later the Orin's GPU). Input stays NHWC float32 0..255 (the
converted graph keeps the ONNX model's layout); logits come back to the host, so `infer` is synchronous.

Suite options (a run's `options:`; each variant backend below presets some; the row records them all under
extra.backend_versions.settings, with what was actually applied):

    mode           eager | graph (CUDA graph captured per batch size, replayed) | compile (torch.compile) |
                   compile-graph (torch.compile, then the compiled forward captured in a CUDA graph per batch
                   size and replayed, as `graph` does: Inductor's fused kernels without its own graph bookkeeping)
    compile_mode   default | reduce-overhead | max-autotune | max-autotune-no-cudagraphs
                   (modes compile and compile-graph; with compile-graph, modes with Inductor's own CUDA graphs
                   are refused)
    tf32           true: FP32 convolutions and matmuls on TF32 tensor cores (precision fp32 only)
    channels_last  true: weights in channels-last memory format (NHWC kernels)
    io             pageable (plain copies) | pinned (the caller's array page-locked in place with
                   cudaHostRegister, so the input goes up in one DMA with no staging copy; a staging
                   buffer where registering fails; async copies) | device (compute only: the input batch
                   stays on the GPU between calls; only the logits come back)
    freeze         true: torch.compile with Inductor's freezing (weights folded in as constants)
    clean          true (default): clean the ONNX graph and make constant Squeeze/Reshape static, so no
                   op reads a device tensor on the host; false: onnx2torch's graph as it converts
    sync_check     true: every forward runs under torch.cuda.set_sync_debug_mode("error"): a hidden
                   host synchronisation fails the row instead of slowing it
    device         cuda (default where available) | cuda:N | cpu
    fuse           none (default) | cudnn: each Conv -> Relu and Conv -> Add -> Relu becomes one cuDNN call
                   (torch.cudnn_convolution_relu / _add_relu; runtimes/torch_fuse.py). The row records the
                   sites fused and those left with the reason (settings.fused) and which kernel ran them
                   (settings.fused_kernel: cudnn on a CUDA device, the plain-op reference elsewhere)
    chunk          0 (default) | N: a batch that is a multiple of N and larger than N goes up in chunks of N
                   images on a copy stream, each chunk's compute (its own CUDA graph, modes graph and
                   compile-graph, io pinned) starting as soon as its chunk has landed: the input copy of chunk
                   k+1 overlaps the compute of chunk k instead of preceding all of it. The call still takes the
                   host's array and returns the host's logits; only the first chunk's copy and the logits' copy
                   back are left outside the compute
    inline_copies  0 (default) | N: batches of at most N images (modes graph and compile-graph, io pinned) are
                   copied into a page-locked staging buffer on the host (a memcpy: 12 KB an image) and their
                   copy up, compute and logits' copy back are one CUDA graph: one launch and one synchronisation
                   a call
    benchmark_limit  null (default: PyTorch's, 10) | N: how many cuDNN engine configurations the benchmark
                   (cudnn.benchmark, always on here) times per convolution shape; 0 times every one
    benchmark_limit_max_batch  0 (default: every batch) | N: the captured modes apply benchmark_limit to batches
                   of at most N only (where the engine choice is the latency); larger ones keep PyTorch's limit
    merge_downsample  0 (default) | N (needs fuse: cudnn): for batches of at most N, a block's first convolution
                   and its 1x1 downsample projection, which read the same input, run as one convolution with the
                   projection's weights as extra output channels (torch_fuse.merge_downsample): one kernel fewer
                   a downsampling block where one image cannot fill the GPU; larger batches run the two apart
    reduce_matmul  0 (default) | N: a MatMul / Gemm by a constant weight of at most N columns (the classifier
                   head) becomes a multiply and a sum (torch_fuse.reduce_small_matmuls): under torch.compile one
                   reduction kernel instead of cuBLAS's split-K GEMV (three kernels and memsets at batch 1)
    pad_channels   0 (default) | N (needs fuse: cudnn): a fused convolution's input channels (the stem's 3) are
                   zero-padded, with zero weights, to a multiple of N (torch_fuse.pad_input_channels): the same
                   function in a shape cuDNN's aligned tensor-core kernels take
The compiled modes compile the casts too (input to the precision, logits back to FP32), so Inductor fuses them
into the first and last kernels (settings.casts: compiled); the other modes cast outside the model.
"""
from __future__ import annotations

from typing import Any, Dict, Optional

import numpy as np

from edgebench.contracts.vocabulary import INPUT_SHAPE, NUM_CLASSES, TF32_EFFECTIVE_KEY
from edgebench.runtimes.base import BackendInputError, Runtime, RuntimeUnavailable

MODES = ("eager", "graph", "compile", "compile-graph")
CAPTURED = ("graph", "compile-graph")  # modes that capture a CUDA graph per batch size themselves
COMPILED = ("compile", "compile-graph")
COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")
IO_MODES = ("pageable", "pinned", "device")
FUSE_MODES = ("none", "cudnn")
DEFAULTS: Dict[str, Any] = {"mode": "eager", "compile_mode": "default", "tf32": False, "channels_last": False,
                            "io": "pageable", "clean": True, "sync_check": False, "freeze": False, "device": None,
                            "fuse": "none", "chunk": 0, "inline_copies": 0, "benchmark_limit": None,
                            "benchmark_limit_max_batch": 0, "merge_downsample": 0, "reduce_matmul": 0,
                            "pad_channels": 0}
CHOICES = {"mode": MODES, "compile_mode": COMPILE_MODES, "io": IO_MODES, "fuse": FUSE_MODES}
FLAGS = ("tf32", "channels_last", "clean", "sync_check", "freeze")
COUNTS = ("chunk", "inline_copies", "benchmark_limit", "benchmark_limit_max_batch", "merge_downsample",
          "reduce_matmul", "pad_channels")  # integers >= 0
# (benchmark_limit may be null)
GRAPH_WARMUP = 3  # eager runs on a side stream before a capture (cuDNN picks its algorithms there)


def _settings(name: str, presets: Dict[str, Any], options: Dict[str, Any]) -> Dict[str, Any]:
    unknown = sorted(set(options) - set(DEFAULTS))
    if unknown:
        raise BackendInputError(f"{name}: unknown options {unknown}; known: {sorted(DEFAULTS)}")
    s = dict(DEFAULTS)
    s.update(presets)
    s.update(options)  # a suite's options override the variant's presets
    for key, allowed in CHOICES.items():
        if s[key] not in allowed:
            raise BackendInputError(f"{name}: option {key}={s[key]!r}; choose one of {', '.join(allowed)}")
    for key in FLAGS:
        if not isinstance(s[key], bool):
            raise BackendInputError(f"{name}: option {key} must be true or false, not {s[key]!r}")
    for key in COUNTS:
        v = s[key]
        if (v is not None or key != "benchmark_limit") and (isinstance(v, bool) or not isinstance(v, int) or v < 0):
            raise BackendInputError(f"{name}: option {key} must be an integer >= 0, not {v!r}")
    if (s["chunk"] or s["inline_copies"]) and (s["mode"] not in CAPTURED or s["io"] != "pinned"):
        raise BackendInputError(f"{name}: chunk and inline_copies need a captured mode ({', '.join(CAPTURED)}) and "
                                f"io=pinned, not mode={s['mode']} io={s['io']}")
    if (s["merge_downsample"] or s["pad_channels"]) and s["fuse"] != "cudnn":
        raise BackendInputError(f"{name}: merge_downsample and pad_channels work on the fused graph: they need "
                                f"fuse=cudnn, not fuse={s['fuse']}")
    return s


def cast_io(module, dtype):
    """The module that torch.compile sees in the compiled modes: the model with its input cast to the run's
    precision and its logits cast back to FP32, so Inductor fuses both casts into its kernels."""
    import torch

    class CastIO(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, x):
            return self.inner(x.to(dtype)).float()

    return CastIO(module)


def make_static(module) -> Dict[str, int]:
    """Replace onnx2torch's Squeeze and Reshape modules whose axes / shape input is a constant (an
    initializer) by modules holding those values as Python ints: no device tensor is read on the host."""
    import torch
    from onnx2torch.node_converters.reshape import OnnxReshape
    from onnx2torch.node_converters.squeeze import OnnxSqueezeDynamicAxes, OnnxSqueezeStaticAxes

    class StaticReshape(torch.nn.Module):
        def __init__(self, shape):
            super().__init__()
            self.shape = [int(v) for v in shape]

        def forward(self, x):
            return torch.reshape(x, [x.shape[i] if d == 0 else d for i, d in enumerate(self.shape)])

    counts = {"squeeze": 0, "reshape": 0}
    graph = module.graph
    for node in list(graph.nodes):
        if node.op != "call_module" or len(node.args) < 2 or getattr(node.args[1], "op", None) != "get_attr":
            continue
        sub = module.get_submodule(node.target)
        if isinstance(sub, (OnnxSqueezeDynamicAxes, OnnxReshape)):
            const = module.get_buffer(node.args[1].target).tolist()
            new = OnnxSqueezeStaticAxes(axes=const) if isinstance(sub, OnnxSqueezeDynamicAxes) else StaticReshape(const)
            counts["squeeze" if isinstance(sub, OnnxSqueezeDynamicAxes) else "reshape"] += 1
            module.add_submodule(node.target, new)
            node.args = (node.args[0],)
    graph.eliminate_dead_code()
    module.recompile()
    return counts


class TorchFromOnnx(Runtime):
    name = "torch"
    artifact_format = "onnx"
    precisions = ("fp32", "fp16", "bf16")
    device = "gpu"
    #: option values this backend name stands for (a suite's options override them)
    presets: Dict[str, Any] = {}

    def __init__(self, artifact: Optional[str], precision: str = "fp32", threads: Optional[int] = None,
                 batch_size: Optional[int] = None, **options: Any):
        super().__init__(artifact, precision=precision, threads=threads, batch_size=batch_size, **options)
        self.settings = _settings(self.name, self.presets, options)
        if self.settings["tf32"] and precision != "fp32":
            raise BackendInputError(f"{self.name}: tf32 applies to fp32 only, not {precision}")
        if self.settings["mode"] == "compile-graph" and self.settings["compile_mode"] in ("reduce-overhead",
                                                                                          "max-autotune"):
            raise BackendInputError(f"{self.name}: mode=compile-graph captures its own CUDA graphs; compile_mode "
                                    f"{self.settings['compile_mode']} would add Inductor's: use default or "
                                    f"max-autotune-no-cudagraphs")
        if self.settings["freeze"] and self.settings["mode"] not in COMPILED:
            raise BackendInputError(f"{self.name}: freeze applies to the compiled modes only, "
                                    f"not mode={self.settings['mode']}")
        self.applied: Dict[str, Any] = {}

    @classmethod
    def artifact_for(cls, precision: str):
        return "onnx", "fp32"

    @classmethod
    def _check_impl(cls) -> Optional[str]:
        import onnx2torch  # noqa: F401
        import torch  # noqa: F401

        return None

    @classmethod
    def versions(cls) -> Dict[str, Any]:
        from importlib import metadata

        import torch

        try:
            o2t = metadata.version("onnx2torch")
        except metadata.PackageNotFoundError:
            o2t = "unknown"
        return {"torch": torch.__version__, "cuda": str(torch.version.cuda),
                "cudnn": str(torch.backends.cudnn.version()), "onnx2torch": o2t}

    def _instance_versions(self) -> Dict[str, Any]:
        """The child sends `rt.versions()` once per group: on a loaded runtime it also carries the settings
        asked for and what was applied, so every row says how it was run."""
        return dict(type(self).versions(), settings=dict(self.settings, **self.applied))

    # --- load ---------------------------------------------------------------------------------
    def _load_impl(self) -> None:
        import onnx
        import torch
        from onnx2torch import convert

        s = self.settings
        if self.threads is not None:
            torch.set_num_threads(self.threads)
        dev = torch.device(s["device"] or ("cuda" if torch.cuda.is_available() else "cpu"))
        if dev.type != "cuda" and (s["mode"] in CAPTURED or s["io"] != "pageable"):
            raise RuntimeUnavailable(f"{self.name}: mode={s['mode']} io={s['io']} needs a CUDA GPU; "
                                     f"this process sees none (torch.cuda.is_available() is False)")
        self.torch, self.dev = torch, dev
        self.dtype = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[self.precision]
        proto = onnx.load(str(self.artifact))
        dims = proto.graph.output[0].type.tensor_type.shape.dim
        self.n_classes = int(dims[-1].dim_value) if dims and dims[-1].dim_value else NUM_CLASSES
        if s["clean"]:
            from edgebench.onnxgraph.clean import clean

            proto, report = clean(proto)
            self.applied["onnx_clean"] = report.to_dict()
        module = convert(proto)
        if s["clean"]:
            self.applied["made_static"] = make_static(module)
        module = module.eval()
        if s["fuse"] == "cudnn":
            self._fuse(module, proto, dev)
        if s["reduce_matmul"]:
            from edgebench.runtimes.torch_fuse import reduce_small_matmuls

            self.applied["reduced_matmuls"] = reduce_small_matmuls(module, s["reduce_matmul"])
        module = module.to(dev)
        if self.dtype != torch.float32:
            module = module.to(self.dtype)
        if s["channels_last"]:
            module = module.to(memory_format=torch.channels_last)
        if dev.type == "cuda":
            torch.backends.cudnn.benchmark = True
            self._default_limit = getattr(torch.backends.cudnn, "benchmark_limit", None)
            if s["benchmark_limit"] is not None:
                torch.backends.cudnn.benchmark_limit = s["benchmark_limit"]
            self.applied["cudnn_benchmark_limit"] = getattr(torch.backends.cudnn, "benchmark_limit", None)
            torch.backends.cuda.matmul.allow_tf32 = s["tf32"]
            torch.backends.cudnn.allow_tf32 = s["tf32"]
            self.applied["gpu_name"] = torch.cuda.get_device_name(dev)
        self.applied[TF32_EFFECTIVE_KEY] = bool(s["tf32"] and self.precision == "fp32" and dev.type == "cuda")
        self._cast_in = s["mode"] not in COMPILED
        if s["mode"] in COMPILED:
            import torch._dynamo
            import torch._inductor.config

            torch._dynamo.config.cache_size_limit = max(torch._dynamo.config.cache_size_limit, 64)
            torch._inductor.config.freezing = s["freeze"]
            module = torch.compile(cast_io(module, self.dtype),
                                   mode=None if s["compile_mode"] == "default" else s["compile_mode"])
        self.applied["casts"] = "eager" if self._cast_in else "compiled"
        self.applied["copies_rule"] = self._copies_rule()
        self.model = module
        self._graphs: Dict[int, Dict[str, Any]] = {}
        self._pinned: Dict[int, Any] = {}
        self._registered: Dict[int, np.ndarray] = {}
        self._held: Optional[Dict[str, Any]] = None
        self._copy_stream = None
        self._pool = torch.cuda.graph_pool_handle() if s["mode"] in CAPTURED else None
        self.versions = self._instance_versions  # type: ignore[assignment]  # shadows the classmethod

    def _fuse(self, module, proto, dev) -> None:
        """The cuDNN fusion pass on the converted module (FP32, on the CPU, before the move to `dev`); an example
        batch of the model's input shape lets shape propagation refuse broadcasting Adds."""
        torch = self.torch
        from edgebench.runtimes.torch_fuse import fuse_cudnn

        dims = [d.dim_value for d in proto.graph.input[0].type.tensor_type.shape.dim]
        shape = [1] + [d if d > 0 else s for d, s in zip(dims[1:], INPUT_SHAPE)] if len(dims) == 4 \
            else [1, *INPUT_SHAPE]
        self.applied["fused"] = fuse_cudnn(module, example=torch.zeros(shape, dtype=torch.float32))
        if dev.type == "cuda" and not torch.backends.cudnn.is_available():
            raise RuntimeUnavailable(f"{self.name}: fuse=cudnn needs cuDNN; torch {torch.__version__} on "
                                     f"{dev} has none (torch.backends.cudnn.is_available() is False)")
        self.applied["fused_kernel"] = (f"cudnn {torch.backends.cudnn.version()}" if dev.type == "cuda" else
                                        f"reference (plain ops: no cuDNN on {dev.type})")
        from edgebench.runtimes.torch_fuse import merge_downsample, pad_input_channels

        if self.settings["merge_downsample"]:
            self.applied["merged_downsample"] = merge_downsample(module, self.settings["merge_downsample"])
        if self.settings["pad_channels"]:
            self.applied["padded_channels"] = pad_input_channels(module, self.settings["pad_channels"])

    def _copies_rule(self) -> Dict[str, Any]:
        """How each batch size's copies run, known at load (a row's settings are read after its first scenario,
        before the larger batches have run: this says what they do; graphs_captured/chunked what has run)."""
        s = self.settings
        if s["mode"] not in CAPTURED or s["io"] != "pinned" or self.dev.type != "cuda":
            return {"copies": "outside the model" if s["io"] != "device" else "none (input on the device)"}
        return {"inside_the_graph_at_most": s["inline_copies"],
                "chunks_of": s["chunk"], "chunked_when": "batch > chunks_of and a multiple of it" if s["chunk"]
                else "never", "otherwise": "one copy up before the graph's replay, one back after"}

    # --- per call -----------------------------------------------------------------------------
    def _forward(self, t):
        torch = self.torch
        with torch.inference_mode():
            t = t.to(self.dtype) if self._cast_in else t
            if not self.settings["sync_check"] or self.dev.type != "cuda":
                return self.model(t)
            torch.cuda.set_sync_debug_mode("error")
            try:
                return self.model(t)
            finally:
                torch.cuda.set_sync_debug_mode("default")

    def _pinned_pair(self, b: int):
        """Page-locked host buffers for one batch size: input (NHWC float32) and logits."""
        if b not in self._pinned:
            torch = self.torch
            self._pinned[b] = (torch.empty((b, *INPUT_SHAPE), dtype=torch.float32, pin_memory=True),
                               torch.empty((b, self.n_classes), dtype=torch.float32, pin_memory=True))
        return self._pinned[b]

    def _upload(self, x: np.ndarray, into=None):
        """The batch on the device, by the configured I/O path (`into`: a static device buffer to fill)."""
        torch, io = self.torch, self.settings["io"]
        if io == "device":
            held = self._held
            if held is not None and held["array"] is x and np.array_equal(held["sample"], x.reshape(-1)[::997]):
                if into is not None and held.get("into") is not into:
                    into.copy_(held["tensor"])
                    held["into"] = into
                return into if into is not None else held["tensor"]
            t = torch.from_numpy(x).to(self.dev)
            # keep a reference: the array's memory cannot be reused by another batch while we hold it
            self._held = {"array": x, "sample": x.reshape(-1)[::997].copy(), "tensor": t}
            if into is not None:
                into.copy_(t)
                self._held["into"] = into
                return into
            return t
        if io == "pinned":
            src = self._page_locked(x)
        else:
            src = torch.from_numpy(x)
        if into is not None:
            into.copy_(src, non_blocking=io == "pinned")
            return into
        return src.to(self.dev, non_blocking=io == "pinned")

    def _page_locked(self, x: np.ndarray):
        """`x` as a tensor over page-locked memory. The array's whole buffer (the root of its views: a
        test-set batch is a slice of the test set) is registered with cudaHostRegister once and held until
        close, so no batch pays a staging copy; where that is refused, a pinned staging buffer."""
        torch = self.torch
        root = x
        while isinstance(root.base, np.ndarray):
            root = root.base
        if x.dtype == np.float32 and x.flags.c_contiguous and root.flags.c_contiguous and root.nbytes:
            if id(root) not in self._registered:
                err = torch.cuda.cudart().cudaHostRegister(root.ctypes.data, root.nbytes, 0)
                if int(getattr(err, "value", err)) == 0:
                    self._registered[id(root)] = root  # held: the buffer stays valid (and its id unique)
                    self.applied["host_registered"] = True
            if id(root) in self._registered:
                return torch.from_numpy(x)
        self.applied["host_registered"] = False
        host_in, _ = self._pinned_pair(len(x))
        host_in.numpy()[...] = x
        return host_in

    def _download(self, y) -> np.ndarray:
        torch = self.torch
        if self.dev.type != "cuda":
            return y.float().numpy()
        if self.settings["io"] == "pageable":
            return y.float().cpu().numpy()  # .cpu() synchronizes
        _, host_out = self._pinned_pair(y.shape[0])
        host_out.copy_(y.float() if y.dtype != torch.float32 else y, non_blocking=True)
        torch.cuda.current_stream(self.dev).synchronize()
        return host_out.numpy().copy()

    def _plan(self, b: int):
        """(chunks, inline) for a batch of `b`: how many chunk graphs, and whether the copies go in the graph."""
        s = self.settings
        if s["io"] != "pinned" or self.dev.type != "cuda":
            return 1, False
        if s["inline_copies"] and b <= s["inline_copies"]:
            return 1, True
        c = s["chunk"]
        return (b // c if c and b > c and b % c == 0 else 1), False

    def _staging(self, shape):
        """A page-locked host array (numpy, registered with cudaHostRegister) and its tensor, or None where
        registering is refused: a graph may only copy from page-locked memory."""
        import mmap

        torch = self.torch
        nbytes = int(np.prod(shape)) * 4
        span = -(-nbytes // mmap.PAGESIZE) * mmap.PAGESIZE  # whole pages of its own: no page shared with
        raw = np.zeros(span + mmap.PAGESIZE, dtype=np.uint8)  # another registered range
        off = (-raw.ctypes.data) % mmap.PAGESIZE
        pages = raw[off:off + span]
        err = torch.cuda.cudart().cudaHostRegister(pages.ctypes.data, span, 0)
        if int(getattr(err, "value", err)) != 0:
            return None
        self._registered[id(pages)] = pages  # unregistered at close (by its address, the pages' start)
        arr = pages[:nbytes].view(np.float32).reshape(shape)
        return arr, torch.from_numpy(arr)

    def _limit_for(self, b: int) -> None:
        """cuDNN's benchmark limit for the shapes a graph of batch `b` meets first (its warm-up picks the engines)."""
        s, cudnn = self.settings, self.torch.backends.cudnn
        if s["benchmark_limit"] is None or not s["benchmark_limit_max_batch"] or not hasattr(cudnn, "benchmark_limit"):
            return
        limit = s["benchmark_limit"] if b <= s["benchmark_limit_max_batch"] else self._default_limit
        cudnn.benchmark_limit = limit
        self.applied.setdefault("cudnn_benchmark_limit_by_batch", {})[str(b)] = limit

    def _warm(self, views) -> None:
        """Eager (or compiling) forwards on a side stream before a capture: cuDNN picks its algorithms and
        torch.compile compiles there, for every view a graph will read (so no view recompiles under capture)."""
        torch = self.torch
        side = torch.cuda.Stream(self.dev)
        side.wait_stream(torch.cuda.current_stream(self.dev))
        with torch.cuda.stream(side):
            for i in range(GRAPH_WARMUP):
                for v in views if i == 0 else views[:1]:
                    self._forward(v)
        torch.cuda.current_stream(self.dev).wait_stream(side)

    def _graph_for(self, b: int) -> Dict[str, Any]:
        if b in self._graphs:
            return self._graphs[b]
        torch = self.torch
        n, inline = self._plan(b)
        static_in = torch.zeros((b, *INPUT_SHAPE), dtype=torch.float32, device=self.dev)
        c = b // n
        views = [static_in[k * c:(k + 1) * c] for k in range(n)]
        host = (self._staging((b, *INPUT_SHAPE)), self._staging((b, self.n_classes))) if inline else None
        if host is not None and None in host:
            host, inline = None, False
        self._limit_for(c)
        self._warm(views)
        static_out = torch.empty((b, self.n_classes), dtype=torch.float32, device=self.dev) if n > 1 else None
        graphs = []
        for k, view in enumerate(views):
            graph = torch.cuda.CUDAGraph()
            with torch.inference_mode(), torch.cuda.graph(graph, pool=self._pool):
                if host is not None:
                    static_in.copy_(host[0][1], non_blocking=True)
                out = self.model(view.to(self.dtype) if self._cast_in else view)
                if out.dtype != torch.float32:
                    out = out.float()  # the cast to FP32 logits inside the graph: no extra launch
                if static_out is None:
                    static_out = out
                else:
                    static_out[k * c:(k + 1) * c].copy_(out)
                if host is not None:
                    host[1][1].copy_(out, non_blocking=True)
            graphs.append(graph)
        self._graphs[b] = {"graphs": graphs, "input": static_in, "output": static_out, "chunk": c, "host": host,
                           "events": [torch.cuda.Event() for _ in graphs] if n > 1 else []}
        self.applied["graphs_captured"] = sorted(self._graphs)
        self.applied["chunked"] = {str(k): len(v["graphs"]) for k, v in self._graphs.items() if len(v["graphs"]) > 1}
        self.applied["inline_copies_at"] = sorted(k for k, v in self._graphs.items() if v["host"] is not None)
        return self._graphs[b]

    def _replay_chunked(self, g: Dict[str, Any], x: np.ndarray) -> None:
        """Chunk k's copy up on the copy stream, its graph on the compute stream once that copy has landed."""
        torch = self.torch
        src, c = self._page_locked(x), g["chunk"]
        cur = torch.cuda.current_stream(self.dev)
        if self._copy_stream is None:
            self._copy_stream = torch.cuda.Stream(self.dev)
        cs = self._copy_stream
        cs.wait_stream(cur)
        with torch.cuda.stream(cs):
            for k, ev in enumerate(g["events"]):
                g["input"][k * c:(k + 1) * c].copy_(src[k * c:(k + 1) * c], non_blocking=True)
                ev.record(cs)
        for graph, ev in zip(g["graphs"], g["events"]):
            cur.wait_event(ev)
            graph.replay()

    def _infer_impl(self, x: np.ndarray) -> np.ndarray:
        if self.settings["mode"] not in CAPTURED:
            return self._download(self._forward(self._upload(x)))
        g = self._graph_for(len(x))
        if g["host"] is not None:  # copies inside the graph: one launch, one synchronisation
            g["host"][0][0][...] = x
            g["graphs"][0].replay()
            self.torch.cuda.current_stream(self.dev).synchronize()
            return g["host"][1][0].copy()
        if g["events"]:
            self._replay_chunked(g, x)
        else:
            self._upload(x, into=g["input"])
            g["graphs"][0].replay()
        return self._download(g["output"])

    def _close_impl(self) -> None:
        self._graphs.clear()
        self._pinned.clear()
        self._held = None
        if self.dev.type == "cuda":
            self.torch.cuda.synchronize(self.dev)
            for root in self._registered.values():
                self.torch.cuda.cudart().cudaHostUnregister(root.ctypes.data)
        self._registered.clear()
        del self.model
        if self.dev.type == "cuda":
            self.torch.cuda.synchronize(self.dev)
            self.torch.cuda.empty_cache()


# --- variants: one backend name each, so rows of one suite never share an id ----------------------
class TorchChannelsLast(TorchFromOnnx):
    name = "torch-cl"
    presets = {"channels_last": True, "io": "pinned"}


class TorchGraph(TorchFromOnnx):
    name = "torch-graph"
    presets = {"mode": "graph", "channels_last": True, "io": "pinned"}


class TorchGraphTF32(TorchFromOnnx):
    name = "torch-graph-tf32"
    precisions = ("fp32",)
    presets = {"mode": "graph", "channels_last": True, "io": "pinned", "tf32": True}


class TorchCompile(TorchFromOnnx):
    name = "torch-compile"
    presets = {"mode": "compile", "compile_mode": "default", "channels_last": True, "io": "pinned"}


class TorchCompileGraphs(TorchFromOnnx):
    name = "torch-compile-ro"
    presets = {"mode": "compile", "compile_mode": "reduce-overhead", "channels_last": True, "io": "pinned"}


class TorchComputeOnly(TorchFromOnnx):
    name = "torch-compute"
    presets = {"mode": "graph", "channels_last": True, "io": "device"}


class TorchCompileGraph(TorchFromOnnx):
    name = "torch-compile-graph"
    presets = {"mode": "compile-graph", "channels_last": True, "io": "pinned"}


class TorchCompileComputeOnly(TorchFromOnnx):
    name = "torch-compile-compute"
    presets = {"mode": "compile-graph", "channels_last": True, "io": "device"}


# the cuDNN-fused variants (fuse: cudnn): conv + bias + [residual add] + ReLU in one cuDNN call per site
class TorchFusedGraph(TorchFromOnnx):
    name = "torch-fused-graph"
    presets = {"mode": "graph", "channels_last": True, "io": "pinned", "fuse": "cudnn"}


class TorchFusedComputeOnly(TorchFromOnnx):
    name = "torch-fused-compute"
    presets = {"mode": "graph", "channels_last": True, "io": "device", "fuse": "cudnn"}


class TorchFusedCompileGraph(TorchFromOnnx):
    name = "torch-fused-compile-graph"
    presets = {"mode": "compile-graph", "channels_last": True, "io": "pinned", "fuse": "cudnn"}


class TorchFusedCompileComputeOnly(TorchFromOnnx):
    name = "torch-fused-compile-compute"
    presets = {"mode": "compile-graph", "channels_last": True, "io": "device", "fuse": "cudnn"}


class TorchFusedCompilePipelined(TorchFromOnnx):
    """fused + compiled + captured, end to end from the host's array, with the copies arranged: batches of up to
    64 in one graph with their copies, large batches in chunks of 1,024 whose copies overlap the compute, every
    cuDNN engine configuration timed for batches of up to 64 (benchmark_limit 0; larger ones keep PyTorch's)."""
    name = "torch-fused-compile-pipe"
    presets = {"mode": "compile-graph", "channels_last": True, "io": "pinned", "fuse": "cudnn", "chunk": 1024,
               "inline_copies": 64, "benchmark_limit": 0, "benchmark_limit_max_batch": 64}


class TorchFusedCompileLean(TorchFromOnnx):
    """torch-fused-compile-pipe with the batch-1 passes: the downsample projections merged into their blocks'
    first convolutions (batches of up to 64), the classifier's MatMul as a reduction, the stem's 3 input channels
    padded to 8."""
    name = "torch-fused-compile-lean"
    presets = dict(TorchFusedCompilePipelined.presets, merge_downsample=64, reduce_matmul=64, pad_channels=8)


#: backend name -> "module:Class": the registry's entries for this module (runtimes/__init__.py)
VARIANTS: Dict[str, str] = {cls.name: f"{__name__}:{cls.__name__}" for cls in (
    TorchFromOnnx, TorchChannelsLast, TorchGraph, TorchGraphTF32, TorchCompile, TorchCompileGraphs,
    TorchComputeOnly, TorchCompileGraph, TorchCompileComputeOnly, TorchFusedGraph, TorchFusedComputeOnly,
    TorchFusedCompileGraph, TorchFusedCompileComputeOnly, TorchFusedCompilePipelined, TorchFusedCompileLean)}
