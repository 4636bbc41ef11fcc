"""What a reader sees first about one document: its environment in a few lines, and one highlight."""
from __future__ import annotations

import json
from typing import Any, List, Optional, Tuple

from edgebench.report.format import fmt, fmt_pp, fmt_ratio, short_hash, sub
from edgebench.report.stats import rate
from edgebench.report.views import CV_LIMIT, DocView, config_label

SUMMARY_KEYS = (
    # edgebench.machine.fingerprint.collect() keys first, then plain names (imported files)
    ("jetson.model", "Device"), ("device_model", "Device"), ("hostname", "Host"),
    ("cpu.model", "CPU"), ("cpu_model", "CPU"), ("cpu.arch", "Architecture"), ("machine", "Architecture"),
    ("cpu.physical_cores", "CPU cores"), ("cpu_count", "CPU cores"), ("cpu.usable_cores", "Usable cores"),
    ("cpu.max_mhz", "CPU max MHz"), ("cpu.isa", "ISA"), ("memory_gb", "Memory GB"),
    ("gpus", "GPU"), ("gpu", "GPU"),
    ("jetson.l4t", "L4T"), ("l4t", "L4T"), ("jetson.jetpack", "JetPack"), ("jetpack", "JetPack"),
    ("jetson.nvpmodel", "Power mode"), ("nvpmodel", "Power mode"),
    ("jetson.jetson_clocks", "jetson_clocks"), ("jetson_clocks", "jetson_clocks"),
    ("jetson.state.warnings", "Board warnings"),
    ("os", "OS"), ("python", "Python"), ("versions", "Packages"), ("tensorflow", "TensorFlow"),
    ("container.target", "Container target"), ("container.image", "Container image"),
    ("container.image_id", "Image id"), ("container.image_digest", "Image digest"),
    ("git_revision", "Kit revision"), ("recorded_by", "Recorded by"),
)


def value_text(v: Any) -> str:
    if v is None:
        return "not recorded"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, (list, tuple)):
        if all(not isinstance(x, (dict, list)) for x in v):
            return ", ".join(str(x) for x in v) if v else "(none)"
        return json.dumps(v, sort_keys=True)
    if isinstance(v, dict):
        return "(none)"
    return str(v)


def _summary_value(key: str, value: Any) -> Optional[str]:
    if value is None or value == "" or value == [] or value == {}:
        return None
    if key == "gpus" and isinstance(value, list):
        names = [" ".join(str(g[k]) for k in ("name", "memory") if g.get(k)) if isinstance(g, dict) else str(g)
                 for g in value]
        return "; ".join(n for n in names if n) or None
    if key == "versions" and isinstance(value, dict):
        return ", ".join(f"{k} {v}" for k, v in value.items() if v) or None
    if key == "jetson.state.warnings" and isinstance(value, list):
        return "; ".join(str(w) for w in value) or None  # not at max power mode, clocks not locked, ...
    if key in ("container.image_id", "container.image_digest"):
        return str(value)[:19 + 7]
    lines = [ln.strip() for ln in value_text(value).splitlines() if ln.strip()]
    if not lines:
        return None
    text = lines[0] + (" …" if len(lines) > 1 else "")
    return text if len(text) <= 140 else text[:137] + "…"


def flatten(d: Any, prefix: str = "") -> List[Tuple[str, str]]:
    out: List[Tuple[str, str]] = []
    if isinstance(d, dict):
        for k, v in d.items():
            key = f"{prefix}.{k}" if prefix else str(k)
            if isinstance(v, dict) and v:
                out.extend(flatten(v, key))
            else:
                out.append((key, value_text(v)))
    else:
        out.append((prefix or "value", value_text(d)))
    return out


def test_set_text(images: Any, data: Any) -> str:
    """The test set in words. The bench records the checksum of the data *source* (the whole archive or
    folder), and draws `images` from it (edgebench.data.subset, seed 0): two subset sizes of one source
    share the checksum, so the text says which set it describes."""
    data = data if isinstance(data, dict) else {}
    n = f"{images:,}" if isinstance(images, int) else "? "
    src = str(data.get("source") or "").replace("\\", "/").rstrip("/").rsplit("/", 1)[-1]
    text = f"{n} images" + (f" from {src}" if src else "")
    return text + f"; source checksum {short_hash(data.get('checksum'))} (of the whole source, not of these images)"


def environment_summary(view: DocView) -> List[Tuple[str, str]]:
    """Label / value pairs a reader needs to know what was measured (the full fingerprint is listed
    separately)."""
    env = view.environment
    out: List[Tuple[str, str]] = []
    seen = set()
    for key, label in SUMMARY_KEYS:
        if label in seen:
            continue
        text = _summary_value(key, sub(env, *key.split(".")))
        if text is not None:
            out.append((label, text))
            seen.add(label)
    if not view.imported:
        out.insert(0, ("Ran on", view.where))
    model = view.model
    if model.get("name"):
        m = str(model.get("name"))
        if view.flops:
            m += f" ({view.flops / 1e9:.2f} GFLOP/image)"
        m += f", sha256 {short_hash(model.get('sha256'))}"
        out.append(("Model", m))
    data = view.suite.get("data") if isinstance(view.suite.get("data"), dict) else {}
    if data.get("checksum") or view.suite.get("test_images"):
        out.append(("Test set", test_set_text(view.suite.get("test_images"), data)))
    rev = sub(view.doc, "kit", "git_revision")
    if rev and "Kit revision" not in seen:
        out.append(("Kit revision", str(rev)[:12]))
    if not out and env:
        out = [(k, v if len(v) <= 140 else v[:137] + "…") for k, v in flatten(env)[:8]]
    return out


def busy_cores(row: Any) -> Optional[float]:
    """Others' average CPU use (cores) while a row marked busy was measured (machine.load), else None."""
    load = sub(row, "extra", "machine_load")
    if not isinstance(load, dict) or not load.get("busy"):
        return None
    cores = sub(load, "during", "other_processes_cores")
    return float(cores) if isinstance(cores, (int, float)) else float("nan")


def trust_marks(row: Any, v: Any) -> List[str]:
    """What a headline must carry about its row: measured on a busy machine, noisy timing."""
    out = []
    cores = busy_cores(row)
    if cores is not None:
        out.append("measured on a busy machine" + (f": others used {cores:.2f} cores" if cores == cores else ""))
    if v.get("cv") is not None and v["cv"] > CV_LIMIT:
        out.append(f"noisy: CV {v['cv'] * 100:.0f}%")
    return out


def busy_count(view: DocView) -> int:
    return sum(1 for r in view.rows if r.get("status") == "ok" and busy_cores(r) is not None)


SCENARIO_SHORT = {"testset": "test-set pass", "latency": "latency", "throughput": "throughput"}


def highlights(view: DocView) -> List[str]:
    """One sentence: the fastest row with a measured accuracy in the main scenario (test-set pass, else
    throughput, else latency), its speed-up and accuracy; and a faster row whose accuracy is unknown."""
    for scenario in ("testset", "throughput", "latency"):
        rated = [(r, rate(r)) for r in view.rows_of(scenario, ok_only=True)]
        rated = [(r, rt) for r, rt in rated if rt and rt["unit"] == "img/s"]
        if rated:
            break
    else:
        return []
    with_acc = [(r, rt) for r, rt in rated if view.accuracy(r)[0] is not None and not view.accuracy_na]
    fastest = max(rated, key=lambda x: x[1]["value"])
    name = SCENARIO_SHORT.get(scenario, scenario)

    def describe(r, rt):
        v = view.row_view(r)
        text = f"{config_label(r, scenario != 'testset')}, {fmt(rt['value'])} img/s"
        if v["speedup"] is not None and not v["is_baseline"]:
            text += f", {fmt_ratio(v['speedup'])} {view.baseline}"
        if v["top1"] is not None:
            text += f", top-1 {v['top1'] * 100:.2f}%"
            if v["delta_top1"] is not None and not v["is_baseline"]:
                text += f" ({fmt_pp(v['delta_top1'])})"
        trust = trust_marks(r, v)
        return text + (f" [{'; '.join(trust)}]" if trust else "")

    if with_acc:
        best = max(with_acc, key=lambda x: x[1]["value"])
        text = f"Fastest with measured accuracy ({name}): {describe(*best)}."
        if fastest[0] is not best[0] and view.accuracy(fastest[0])[0] is None:
            text += f" Faster but accuracy not measured: {describe(*fastest)}."
    elif view.accuracy_na:
        text = f"Fastest ({name}): {describe(*fastest)}; accuracy not applicable (untrained model)."
    else:
        text = f"Fastest ({name}): {describe(*fastest)}; accuracy not measured."
    return emulation_note(view) + [text] + cpu_fastest(view)


#: what an x86 CPU lists (machine.fingerprint ISA_FLAGS) and an Arm one never does
X86_ISA = ("sse4_2", "avx", "avx2", "fma", "avx512f")
ARM_ARCHES = ("aarch64", "arm64", "armv7l", "armv8l")


def emulated_on(env: Any) -> Optional[List[str]]:
    """The x86 flags of an Arm document's CPU (None: not emulated). Under qemu user-mode emulation the program
    sees an Arm machine but reads the host's /proc/cpuinfo, so an Arm architecture with x86 flags means every
    instruction was translated."""
    arch = str(sub(env, "cpu", "arch") or "")
    isa = sub(env, "cpu", "isa")
    if arch not in ARM_ARCHES or not isinstance(isa, list):
        return None
    found = [f for f in isa if f in X86_ISA]
    return found or None


def emulation_note(view: DocView) -> List[str]:
    """The first highlight of a document measured under emulation: its speeds say nothing about an Arm CPU."""
    flags = emulated_on(view.environment)
    if not flags:
        return []
    return [f"Emulated: these {sub(view.environment, 'cpu', 'arch')} results ran under user-mode emulation (qemu) "
            f"on an x86 CPU ({sub(view.environment, 'cpu', 'model') or 'CPU'}: {', '.join(flags)}). Speeds and "
            f"speed-ups here mean nothing about an Arm CPU; only top-1 and agreement with the reference count."]


def cpu_fastest(view: DocView) -> List[str]:
    """The CPU summary: at each thread count, the fastest CPU backend in the test-set pass (else throughput) with
    its speed-up and what it costs in top-1 against the reference, one sentence per thread count."""
    for scenario in ("testset", "throughput"):
        rated = [(r, rate(r)) for r in view.rows_of(scenario, ok_only=True) if r.get("compute") == "cpu"]
        rated = [(r, rt) for r, rt in rated if rt and rt["unit"] == "img/s" and r.get("threads")]
        if rated:
            break
    else:
        return []
    out = []
    for threads in sorted({r["threads"] for r, _ in rated}):
        r, rt = max(((r, rt) for r, rt in rated if r["threads"] == threads), key=lambda x: x[1]["value"])
        v = view.row_view(r)
        text = f"CPU, {threads} thread{'s' if threads > 1 else ''}: fastest {r['backend']} {r['precision']}, " \
               f"{fmt(rt['value'])} img/s ({SCENARIO_SHORT[scenario]})"
        if v["speedup"] is not None and not v["is_baseline"]:
            text += f", {fmt_ratio(v['speedup'])} {view.baseline}"
        if view.accuracy_na:
            text += ", top-1 not applicable (untrained model)"
        elif v["top1"] is None:
            text += ", top-1 not measured"
        else:
            text += f", top-1 {v['top1'] * 100:.2f}%"
            if v["delta_top1"] is not None:
                text += f" (cost {fmt_pp(v['delta_top1'])})"
        out.append(text + ".")
    return out
