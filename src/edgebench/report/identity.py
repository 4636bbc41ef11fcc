"""What must agree before two results documents are compared row by row, and what else differs.

Rows of two documents are compared speed for speed only when the model (sha256), the model's input
and the test set (suite.data.checksum and suite.test_images) agree. The image a run used (container
image id / digest), the machine and the kit are told too, but do not stop a comparison.
An unknown value never agrees: a file that does not record its model's sha256 is not the same model.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Dict, List, Optional

from edgebench.contracts.vocabulary import INPUT_SHAPE
from edgebench.report.format import short_hash, sub
from edgebench.report.views import DocView


@dataclass
class Difference:
    """One difference between two results documents (or two of their rows).

    kind: "model" | "input" | "test set" | "artifact" (these stop a speed comparison), "image", "machine",
    "place", "kit" (told, not stopping), "speed", "accuracy", "status", "missing row" (row by row)."""
    kind: str
    what: str
    a: str
    b: str
    detail: str = ""
    blocking: bool = False

    def to_dict(self) -> Dict[str, Any]:
        return asdict(self)

    def text(self, a_name: str = "first", b_name: str = "second") -> str:
        s = f"{self.what}: {self.a} ({a_name}) vs {self.b} ({b_name})"
        return s + (f"; {self.detail}" if self.detail else "")


def input_shape(view: DocView) -> Optional[str]:
    shape = view.model.get("input_shape") or view.suite.get("input_shape")
    return "×".join(str(x) for x in shape) if isinstance(shape, (list, tuple)) else None


def test_set(view: DocView) -> Dict[str, Any]:
    data = view.suite.get("data") if isinstance(view.suite.get("data"), dict) else {}
    return {"checksum": data.get("checksum"), "images": view.suite.get("test_images")}


def machine(view: DocView) -> Optional[str]:
    cpu = sub(view.environment, "cpu", "model") or view.environment.get("cpu_model")
    gpus = view.environment.get("gpus")
    gpu = ", ".join(str(g.get("name")) for g in gpus if isinstance(g, dict)) if isinstance(gpus, list) else ""
    dev = sub(view.environment, "jetson", "model") or view.environment.get("device_model")
    parts = [str(p) for p in (dev, cpu, gpu) if p]
    return " / ".join(parts) or None


def _model_name(view: DocView) -> str:
    name = str(view.model.get("name") or "model")
    flops = f", {view.flops / 1e9:.2f} GFLOP/image" if view.flops else ""
    return f"{name} (sha256 {short_hash(view.model.get('sha256'))}{flops})"


def _image_text(view: DocView, value: Optional[str]) -> str:
    if value:
        return short_hash(value)
    return "none (ran on the host)" if view.where == "host" else "not recorded"


def identity_differences(a: DocView, b: DocView) -> List[Difference]:
    out: List[Difference] = []
    sa, sb = a.model.get("sha256"), b.model.get("sha256")
    if not sa or not sb or sa != sb:
        why = "sha256 not recorded" if not sa or not sb else "different sha256"
        out.append(Difference("model", "model", _model_name(a), _model_name(b), why, blocking=True))
    ia, ib = input_shape(a), input_shape(b)
    kit = "×".join(str(x) for x in INPUT_SHAPE)
    if (ia or kit) != (ib or kit):
        out.append(Difference("input", "model input", ia or f"{kit} (not recorded; the kit's)",
                              ib or f"{kit} (not recorded; the kit's)", blocking=True))
    ta, tb = test_set(a), test_set(b)
    if not ta["checksum"] or not tb["checksum"] or ta != tb:
        why = "checksum not recorded" if not ta["checksum"] or not tb["checksum"] else ""
        out.append(Difference("test set", "test set",
                              f"{ta['images'] or '?'} images from source {short_hash(ta['checksum'])}",
                              f"{tb['images'] or '?'} images from source {short_hash(tb['checksum'])}", why,
                              blocking=True))
    for key, what in (("image_id", "container image id"), ("image_digest", "container image digest")):
        xa, xb = a.container(key), b.container(key)
        if (xa or xb) and xa != xb:
            out.append(Difference("image", what, _image_text(a, xa), _image_text(b, xb),
                                  "the two results came from different images"))
    if a.where != b.where and not (a.imported or b.imported):
        out.append(Difference("place", "ran on", a.where, b.where))
    ma, mb = machine(a), machine(b)
    if ma and mb and ma != mb:
        out.append(Difference("machine", "machine", ma, mb, "floors are per machine and not compared"))
    ka, kb = sub(a.doc, "kit", "git_revision"), sub(b.doc, "kit", "git_revision")
    if ka and kb and ka != kb:
        out.append(Difference("kit", "kit revision", str(ka)[:12], str(kb)[:12]))
    return out


def cross_model_per_flop(a: DocView, b: DocView, diffs: List[Difference]) -> bool:
    """Different models whose FLOPs per image are both known may be compared per FLOP (GFLOP/s)."""
    kinds = {d.kind for d in diffs if d.blocking}
    return "model" in kinds and bool(a.flops) and bool(b.flops) and "input" not in kinds
