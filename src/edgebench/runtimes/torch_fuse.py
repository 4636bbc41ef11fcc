"""cuDNN fusion pass for the torch backend: each Conv -> Relu and Conv -> Add -> Relu of a converted model
becomes one fused cuDNN call (convolution + bias + [residual add] + ReLU in the convolution's epilogue).

Works on the torch.fx GraphModule that onnx2torch makes from the cleaned ONNX graph (runtimes/torch.py), where
the cleaning has already folded each BatchNormalization into its Conv (onnxgraph/clean.py), so a Conv's bias
is the folded BN. Not ResNet-specific: every site is matched structurally on the graph.

    Conv -> Relu                   torch.cudnn_convolution_relu(x, w, b, stride, padding, dilation, groups)
    Conv -> Add(., z) -> Relu      torch.cudnn_convolution_add_relu(x, w, z, alpha=1, b, stride, padding,
                                                                    dilation, groups)   = relu(conv(x) + b + z)

The signatures are aten's (native_functions.yaml, the same in torch 2.11 and 2.13; CUDA dispatch only). An Add
whose two inputs are both single-use convolutions (a ResNet block with a downsample branch: the main 3x3 conv
and the 1x1 projection) fuses the conv with the larger kernel; the other one's output becomes the residual z.

A site is left unfused, with its reason in the report, where: the Conv's output has other users; what follows
is neither a ReLU nor an elementwise Add; the Add broadcasts, is not followed by a ReLU, or its residual is a
constant; the Conv is not 2-D, has a string or non-zero padding mode, or a shape that the example input shows
differs from the residual's.

The fused modules call cuDNN on CUDA tensors and compute the same function with plain ops elsewhere (the CPU
has no cuDNN), so a fused module stays a correct module on any device: the CPU tests check the rewrite with that
reference path, the GPU tests (tests/unit/test_torch_gpu.py) the cuDNN path against ONNX Runtime.
"""
from __future__ import annotations

from typing import Any, Dict, List, Optional, Tuple

import torch
from torch import fx, nn

PAD_TYPES = ("OnnxPadStatic",)  # onnx2torch's module for a Conv's asymmetric pads: Sequential(pad, conv)


def _conv_of(gm: fx.GraphModule, node: fx.Node) -> Tuple[Optional[nn.Conv2d], Optional[nn.Module], str]:
    """(conv, pre-pad, why not) for a node that may be a fusable 2-D convolution."""
    if node.op != "call_module":
        return None, None, "not a module call"
    mod = gm.get_submodule(node.target)
    pad = None
    if isinstance(mod, nn.Sequential) and len(mod) == 2 and type(mod[0]).__name__ in PAD_TYPES:
        pad, mod = mod[0], mod[1]
    if not isinstance(mod, nn.Conv2d) or isinstance(mod, nn.ConvTranspose2d):
        return None, None, f"{type(mod).__name__} is not a 2-D convolution"
    if isinstance(mod.padding, str) or mod.padding_mode != "zeros":
        return None, None, f"padding {mod.padding!r} mode {mod.padding_mode} (cuDNN's fused call takes zero pads)"
    return mod, pad, ""


def _is_relu(gm: fx.GraphModule, node: fx.Node) -> bool:
    if node.op == "call_module":
        return isinstance(gm.get_submodule(node.target), nn.ReLU)
    if node.op == "call_function":
        return node.target in (torch.relu, torch.nn.functional.relu, torch.relu_)
    return node.op == "call_method" and node.target in ("relu", "relu_")


def _is_add(gm: fx.GraphModule, node: fx.Node) -> bool:
    """An elementwise two-tensor add: onnx2torch's Add module (no old-style broadcast) or torch.add / +."""
    import operator

    if node.op == "call_module":
        mod = gm.get_submodule(node.target)
        return (type(mod).__name__ == "OnnxBinaryMathOperation" and getattr(mod, "math_op_function", None) is torch.add
                and getattr(mod, "broadcast", None) != 1 and len(node.args) == 2 and not node.kwargs)
    if node.op == "call_function":
        return node.target in (torch.add, operator.add) and len(node.args) == 2 and not node.kwargs
    return False


class _FusedConv(nn.Module):
    """A 2-D convolution with its ReLU (and residual add) in one call; holds the conv's own parameters."""

    def __init__(self, conv: nn.Conv2d, pad: Optional[nn.Module]):
        super().__init__()
        self.weight, self.bias, self.pad = conv.weight, conv.bias, pad
        self.stride, self.padding = list(conv.stride), list(conv.padding)
        self.dilation, self.groups = list(conv.dilation), int(conv.groups)
        self.cpad = 0  # zero input channels added in front of the conv (pad_channels)

    def _conv(self, x):
        return torch.nn.functional.conv2d(x, self.weight, self.bias, self.stride, self.padding, self.dilation,
                                          self.groups)

    def _in(self, x):
        if self.cpad:
            x = torch.nn.functional.pad(x, (0, 0, 0, 0, 0, self.cpad))
        return self.pad(x) if self.pad is not None else x


class ConvReLU(_FusedConv):
    def forward(self, x):
        x = self._in(x)
        if x.is_cuda:
            return torch.cudnn_convolution_relu(x, self.weight, self.bias, self.stride, self.padding,
                                                self.dilation, self.groups)
        return torch.relu(self._conv(x))  # reference path: no cuDNN off the GPU


class ConvAddReLU(_FusedConv):
    def forward(self, x, z):
        x = self._in(x)
        if x.is_cuda:
            return torch.cudnn_convolution_add_relu(x, self.weight, z, 1.0, self.bias, self.stride, self.padding,
                                                    self.dilation, self.groups)
        return torch.relu(self._conv(x) + z)


def _shape(node: Any) -> Optional[Tuple[int, ...]]:
    meta = getattr(node, "meta", {}).get("tensor_meta") if isinstance(node, fx.Node) else None
    return tuple(meta.shape) if meta is not None and hasattr(meta, "shape") else None


def _pick_conv(gm: fx.GraphModule, add: fx.Node) -> Tuple[Optional[int], str]:
    """Which of the Add's two inputs is the conv to fuse (index), or why neither is."""
    cands: List[Tuple[int, int]] = []  # (kernel area, index)
    why = "neither input of the Add is a convolution"
    for i, a in enumerate(add.args):
        if not isinstance(a, fx.Node):
            continue
        conv, _, reason = _conv_of(gm, a)
        if conv is None:
            continue
        if len(a.users) != 1:
            why = f"{a.target}: output used by {len(a.users)} nodes"
            continue
        cands.append((conv.kernel_size[0] * conv.kernel_size[1], -i))
    if not cands:
        return None, why
    return -max(cands)[1], ""


def _site_for_add(gm: fx.GraphModule, add: fx.Node) -> Tuple[Optional[Dict[str, Any]], str]:
    if len(add.users) != 1 or not _is_relu(gm, next(iter(add.users))):
        users = [u.name for u in add.users]
        return None, f"the Add is followed by {users}, not by a ReLU alone"
    i, why = _pick_conv(gm, add)
    if i is None:
        return None, why
    conv_node, z = add.args[i], add.args[1 - i]
    if not isinstance(z, fx.Node) or z.op == "get_attr":
        return None, "the residual is a constant, not a tensor computed in the graph"
    s_conv, s_z = _shape(conv_node), _shape(z)
    if s_conv is not None and s_z is not None and s_conv != s_z:
        return None, f"the Add broadcasts {s_z} onto {s_conv}"
    # the residual is read off the Add when it is rewritten: an earlier rewrite may have replaced its producer
    return {"kind": "conv_add_relu", "conv": conv_node, "z_index": 1 - i, "relu": next(iter(add.users)),
            "add": add}, ""


def _rewrite(gm: fx.GraphModule, site: Dict[str, Any], index: int) -> str:
    conv_node, relu = site["conv"], site["relu"]
    conv, pad, _ = _conv_of(gm, conv_node)
    cls = ConvAddReLU if site["kind"] == "conv_add_relu" else ConvReLU
    name = f"fused_{index}_{str(conv_node.target).replace('.', '_')}"
    gm.add_submodule(name, cls(conv, pad))
    if cls is ConvAddReLU:
        site["z"] = site["add"].args[site["z_index"]]
    args = (conv_node.args[0], site["z"]) if cls is ConvAddReLU else (conv_node.args[0],)
    with gm.graph.inserting_after(relu):
        new = gm.graph.call_module(name, args=args)
    relu.replace_all_uses_with(new)
    for dead in (relu, site.get("add"), conv_node):
        if dead is not None:
            gm.graph.erase_node(dead)
    return name


def fuse_cudnn(gm: fx.GraphModule, example: Optional[torch.Tensor] = None) -> Dict[str, Any]:
    """Rewrite `gm` in place; returns {"fused": n, "conv_relu": n, "conv_add_relu": n, "convs": n, "sites": [...],
    "left": [{"conv", "reason"}...]}. `example` (a batch on the module's device) lets shape propagation refuse
    broadcasting Adds; without it an Add is taken as elementwise, which onnx2torch's conversions of the kit's
    exports are."""
    if example is not None:
        from torch.fx.passes.shape_prop import ShapeProp

        with torch.no_grad():
            ShapeProp(gm).propagate(example)
    sites: List[Dict[str, Any]] = []
    left: Dict[str, str] = {}
    taken: set = set()
    convs = [n for n in gm.graph.nodes if _conv_of(gm, n)[0] is not None or n.op == "call_module"
             and isinstance(gm.get_submodule(n.target), (nn.Conv1d, nn.Conv2d, nn.Conv3d))]
    for node in convs:
        if node in taken:
            continue
        conv, _, why = _conv_of(gm, node)
        users = list(node.users)
        if conv is None:
            left[node.name] = why
        elif len(users) != 1:
            left[node.name] = f"output used by {len(users)} nodes"
        elif _is_relu(gm, users[0]):
            sites.append({"kind": "conv_relu", "conv": node, "relu": users[0]})
            taken.add(node)
        elif _is_add(gm, users[0]):
            site, why = _site_for_add(gm, users[0])
            if site is None:
                left[node.name] = why
                continue
            if site["add"] not in {s.get("add") for s in sites}:
                sites.append(site)
                taken.add(site["conv"])
            if site["conv"] is not node:
                left[node.name] = f"its output is the residual of the fused {site['conv'].name} (downsample branch)"
        else:
            left[node.name] = f"followed by {users[0].name} ({users[0].op} {users[0].target}), not a ReLU or Add"
    for n in taken:
        left.pop(n.name, None)
    records = []
    for i, site in enumerate(sites):
        module = _rewrite(gm, site, i)
        records.append(_record(site, module))
    _commit(gm)
    kinds = [r["kind"] for r in records]
    return {"fused": len(records), "conv_relu": kinds.count("conv_relu"),
            "conv_add_relu": kinds.count("conv_add_relu"), "convs": len(convs), "sites": records,
            "left": [{"conv": k, "reason": v} for k, v in left.items()]}


def _commit(gm: fx.GraphModule) -> None:
    """After a pass rewrote the graph: check it, drop the modules nothing calls, regenerate forward()."""
    gm.graph.lint()
    gm.delete_all_unused_submodules()
    gm.recompile()


def _record(site: Dict[str, Any], module: str) -> Dict[str, Any]:
    rec = {"kind": site["kind"], "conv": site["conv"].name, "module": module}
    if "z" in site:
        rec["residual"] = site["z"].name
    return rec


# --- batch-1 passes (issue 22): fewer and better-shaped kernels where one image cannot fill the GPU -------------
class DownsampleFork(nn.Module):
    """A residual block's first fused convolution (3x3, stride s, ReLU) and its downsample projection (1x1, stride
    s), which read the same input. For batches of at most `max_batch` one convolution computes both: the
    projection's weights sit at the kernel tap that reads the pixel the projection reads, as extra output
    channels, and the output is split (ReLU on the main part only). One convolution of twice the output channels
    costs at batch 1 about what the main one alone costs (the work is too small to fill the GPU), so the
    projection's kernel and its bias kernel go. Larger batches run the two apart: the merged form spends k*k times
    the projection's FLOPs."""

    def __init__(self, main: ConvReLU, down: nn.Conv2d, tap: Tuple[int, int], max_batch: int):
        super().__init__()
        self.main, self.down, self.max_batch = main, down, int(max_batch)
        self.c = int(main.weight.shape[0])
        with torch.no_grad():
            w = torch.zeros((down.out_channels, *main.weight.shape[1:]), dtype=main.weight.dtype)
            w[:, :down.in_channels, tap[0], tap[1]] = down.weight[:, :, 0, 0]
            b_down = down.bias if down.bias is not None else torch.zeros(down.out_channels)
            b_main = main.bias if main.bias is not None else torch.zeros(self.c)
            self.weight = nn.Parameter(torch.cat([main.weight.detach(), w]), requires_grad=False)
            self.bias = nn.Parameter(torch.cat([b_main.detach(), b_down.detach()]), requires_grad=False)

    def forward(self, x):
        if x.shape[0] > self.max_batch:
            return self.main(x), self.down(x)
        m = self.main
        y = torch.nn.functional.conv2d(m._in(x), self.weight, self.bias, m.stride, m.padding, m.dilation, 1)
        # both halves dense in y's own layout, made by the kernel that splits y (under torch.compile): a strided
        # residual would be copied again inside cuDNN's fused call (an extra kernel a site at batch 1)
        fmt = torch.channels_last if y.is_contiguous(memory_format=torch.channels_last) else torch.contiguous_format
        return torch.relu(y[:, :self.c]).contiguous(memory_format=fmt), y[:, self.c:].contiguous(memory_format=fmt)


def _merge_tap(gm: fx.GraphModule, fused: fx.Node, down_node: fx.Node) -> Tuple[Optional[Tuple[int, int]], str]:
    """The kernel tap of the fused main conv that reads the pixel the 1x1 projection reads, or why none does."""
    main, down = gm.get_submodule(fused.target), gm.get_submodule(down_node.target)
    if not isinstance(down, nn.Conv2d) or tuple(down.kernel_size) != (1, 1) or tuple(down.padding) != (0, 0) \
            or down.groups != 1 or tuple(down.dilation) != (1, 1):
        return None, "the residual is not a plain 1x1 convolution without padding"
    if list(down.stride) != main.stride or main.groups != 1 or main.dilation != [1, 1] or main.cpad:
        return None, "the projection's stride differs from the main convolution's (or groups/dilation/channel pad)"
    if down_node.args[0] is not fused.args[0] or len(fused.users) != 1 or len(down_node.users) != 1:
        return None, "the projection and the main convolution do not read the same input, or have other users"
    top, left = main.padding[0], main.padding[1]
    if main.pad is not None:
        pads = list(getattr(main.pad, "pads", []))
        if len(pads) != 4 or getattr(main.pad, "mode", "constant") != "constant":
            return None, "the main convolution's pre-pad is not a constant 2-D pad"
        left, top = left + pads[0], top + pads[2]
    kh, kw = main.weight.shape[2:]
    if not (0 <= top < kh and 0 <= left < kw):
        return None, f"no kernel tap reads the projection's pixel (pads top {top}, left {left})"
    return (int(top), int(left)), ""


def merge_downsample(gm: fx.GraphModule, max_batch: int) -> Dict[str, Any]:
    """After fuse_cudnn: each ConvAddReLU whose residual is a 1x1 projection of the input of the fused ConvReLU
    before it becomes DownsampleFork (for batches of at most `max_batch`). Returns {"merged": n, "sites": [...],
    "left": [{"conv", "reason"}]}."""
    import operator

    sites, left = [], []
    for node in list(gm.graph.nodes):
        if node.op != "call_module" or not isinstance(gm.get_submodule(node.target), ConvAddReLU):
            continue
        h, z = node.args
        if not (isinstance(h, fx.Node) and isinstance(z, fx.Node) and h.op == "call_module"
                and isinstance(gm.get_submodule(h.target), ConvReLU) and z.op == "call_module"
                and isinstance(gm.get_submodule(z.target), nn.Conv2d)):
            continue  # the residual is no projection (an identity block): nothing to merge
        tap, why = _merge_tap(gm, h, z)
        if tap is None:
            left.append({"conv": z.name, "reason": why})
            continue
        name = f"fork_{len(sites)}_{str(h.target).replace('.', '_')}"
        gm.add_submodule(name, DownsampleFork(gm.get_submodule(h.target), gm.get_submodule(z.target), tap,
                                              max_batch))
        first = h if list(gm.graph.nodes).index(h) < list(gm.graph.nodes).index(z) else z
        with gm.graph.inserting_before(first):
            fork = gm.graph.call_module(name, args=(h.args[0],))
            new_h = gm.graph.call_function(operator.getitem, (fork, 0))
            new_z = gm.graph.call_function(operator.getitem, (fork, 1))
        h.replace_all_uses_with(new_h)
        z.replace_all_uses_with(new_z)
        gm.graph.erase_node(h)
        gm.graph.erase_node(z)
        sites.append({"main": h.name, "downsample": z.name, "module": name, "tap": list(tap)})
    _commit(gm)
    return {"merged": len(sites), "max_batch": int(max_batch), "sites": sites, "left": left}


def _attr(gm: fx.GraphModule, target: str):
    obj = gm
    for part in target.split("."):
        obj = getattr(obj, part)
    return obj


class ReducedMatMul(nn.Module):
    """x @ w (+ b) for a constant w of few columns, as a multiply and a sum over the shared dimension: under
    torch.compile one reduction kernel (fused with what precedes it) instead of a cuBLAS GEMV, which at batch 1 is
    three kernels (split-K GEMV, its reduction, the epilogue) and memsets. Same function on every device."""

    def __init__(self, w: torch.Tensor, b: Optional[torch.Tensor] = None):
        super().__init__()
        self.register_buffer("w", w.detach().clone())
        self.register_buffer("b", None if b is None else b.detach().clone())

    def forward(self, x):
        y = (x.unsqueeze(-1) * self.w).sum(-2)
        return y if self.b is None else y + self.b


def reduce_small_matmuls(gm: fx.GraphModule, max_cols: int) -> Dict[str, Any]:
    """Each MatMul by a constant 2-D weight (onnx2torch's OnnxMatMul with an initializer) and each nn.Linear with
    at most `max_cols` output columns becomes ReducedMatMul. Returns {"reduced": n, "sites": [...]}."""
    sites = []
    for node in list(gm.graph.nodes):
        if node.op != "call_module":
            continue
        mod = gm.get_submodule(node.target)
        new = None
        if isinstance(mod, nn.Linear) and mod.out_features <= max_cols and len(node.args) == 1:
            new = ReducedMatMul(mod.weight.t(), mod.bias)
        elif type(mod).__name__ == "OnnxMatMul" and len(node.args) == 2 and isinstance(node.args[1], fx.Node) \
                and node.args[1].op == "get_attr":
            w = _attr(gm, node.args[1].target)
            if w.dim() == 2 and w.shape[1] <= max_cols:
                new = ReducedMatMul(w)
        if new is None:
            continue
        name = f"reduced_{len(sites)}_{str(node.target).replace('.', '_')}"
        gm.add_submodule(name, new)
        with gm.graph.inserting_after(node):
            rep = gm.graph.call_module(name, args=(node.args[0],))
        node.replace_all_uses_with(rep)
        gm.graph.erase_node(node)
        sites.append({"node": node.name, "module": name, "shape": list(new.w.shape)})
    gm.graph.eliminate_dead_code()
    _commit(gm)
    return {"reduced": len(sites), "sites": sites}


def pad_input_channels(gm: fx.GraphModule, multiple: int) -> Dict[str, Any]:
    """Each fused convolution whose input channels are not a multiple of `multiple` (the stem's 3) gets zero
    input channels and zero weights up to it: the same function, a tensor-core-aligned shape for cuDNN (the
    3-channel stem otherwise runs cuDNN's unaligned kernels). Returns {"padded": n, "sites": [...]}."""
    sites = []
    for name, mod in gm.named_modules():
        if not isinstance(mod, _FusedConv) or mod.groups != 1:
            continue
        cin = int(mod.weight.shape[1])
        extra = -cin % multiple
        if not extra:
            continue
        with torch.no_grad():
            w = torch.nn.functional.pad(mod.weight.detach(), (0, 0, 0, 0, 0, extra))
        mod.weight, mod.cpad = nn.Parameter(w, requires_grad=False), extra
        sites.append({"module": name, "in_channels": cin, "padded_to": cin + extra})
    return {"padded": len(sites), "multiple": int(multiple), "sites": sites}
