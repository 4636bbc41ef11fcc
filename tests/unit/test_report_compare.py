"""Comparisons the reader can trust: rows matched only for the same model, input and test set; a real
noise test; images and machines told; `compare_documents` for `reproduce`; units of every field."""
from __future__ import annotations

import random

import pytest
from report_helpers import make_doc, write

from edgebench import results
from edgebench.report import REFERENCE_PATH, Difference, build_context, compare_documents, render_report
from edgebench.report.compare import compare
from edgebench.report.fields import UNITS
from edgebench.report.stats import METHOD, speed_test
from edgebench.report.views import DocView
from edgebench.stats_core import bootstrap_ratio_of_medians, percentile


def _rows(doc, **kw):
    return [r for r in doc["rows"] if all(r.get(k) == v for k, v in kw.items())]


# ----------------------------------------------------------------------------------------------
# Trust #3: rows matched only when model sha256, input and test set agree

def test_different_models_are_not_compared_row_by_row():
    a = DocView(make_doc("dev", model_sha="aa" * 32))
    b_doc = make_doc("dev", 4.0, model_sha="bb" * 32)
    b_doc["model"].pop("flops_per_image")
    b_doc["model"].pop("macs_per_image")   # FLOPs unknown: no per-FLOP comparison either
    cmp = compare(a, DocView(b_doc))
    assert not cmp["comparable"] and not cmp["per_flop"] and cmp["lines"] == [] and cmp["geomean"] is None
    assert [d.kind for d in cmp["blockers"]] == ["model"]
    assert "not comparable: model differ" in cmp["kind"]


@pytest.mark.parametrize("change,kind", [
    (dict(data_checksum="ee" * 32), "test set"), (dict(test_images=1000), "test set")])
def test_a_different_test_set_stops_ratios(change, kind):
    cmp = compare(DocView(make_doc("dev")), DocView(make_doc("dev", 1.3, **change)))
    assert [d.kind for d in cmp["blockers"]] == [kind] and cmp["lines"] == []


def test_an_unrecorded_model_hash_is_not_the_same_model():
    cmp = compare(DocView(make_doc("dev", model_sha=None)), DocView(make_doc("dev")))
    [d] = cmp["blockers"]
    assert d.kind == "model" and d.detail == "sha256 not recorded"


def test_different_input_shape_stops_ratios():
    b = make_doc("dev")
    b["model"]["input_shape"] = [64, 64, 3]
    cmp = compare(DocView(make_doc("dev")), DocView(b))
    assert "input" in [d.kind for d in cmp["blockers"]] and cmp["lines"] == []


def test_rows_of_different_artifacts_are_not_compared():
    b = make_doc("dev", 1.2, seed=2)
    for r in _rows(b, backend="onnxruntime", precision="int8"):
        r["artifact"] = dict(r["artifact"], sha256="another-int8")
    cmp = compare(DocView(make_doc("dev", seed=1)), DocView(b))
    assert not any(ln["config"].startswith("onnxruntime · int8") for ln in cmp["lines"])
    assert any(d.kind == "artifact" for d in cmp["differences"])


def test_seed_study_against_the_kit_model_is_cross_model_per_flop(tmp_path):
    """The seed study's CIFAR-stem model (2.32 GFLOP) against the kit's resnet34 (0.15 GFLOP)."""
    ref = DocView(results.load(REFERENCE_PATH))
    local_doc = make_doc("local", model_sha="35" * 32)
    local_doc["model"].update(name="resnet34", flops_per_image=149530624, macs_per_image=74765312)
    cmp = compare(ref, DocView(local_doc))
    assert cmp["per_flop"] and "cross-model" in cmp["kind"]
    [line] = [ln for ln in cmp["lines"] if ln["scenario"] == "testset"]
    assert line["unit"] == "GFLOP/s" and "GFLOP/s" in line["b_text"] and "faster" not in line["verdict"]
    ts = _rows(local_doc, backend="keras", precision="fp32", threads=1, scenario="testset")[0]["testset"]
    per_image = (10000 / ts["avg_s"]) / (10000 / 1111.3610269228618)
    assert line["ratio"] == pytest.approx(per_image * 149530624 / 2318804992, rel=0.02)
    html, md = render_report([write(tmp_path / "local.json", local_doc)], tmp_path / "out", with_imported=True)
    text = md.read_text()
    assert "**cross-model comparison** (model: resnet34-cifar (sha256 unknown, 2.32 GFLOP/image) vs resnet34" in text
    assert "compared per FLOP (GFLOP/s), not per image" in text
    assert 'class="badge faster"' not in html.read_text()


# ----------------------------------------------------------------------------------------------
# Trust #4: "within noise" from a bootstrap of the raw samples, the method stated

def test_bootstrap_interval_of_the_ratio_of_medians():
    rng = random.Random(3)
    a = [10 * rng.lognormvariate(0, 0.05) for _ in range(200)]
    b = [12 * rng.lognormvariate(0, 0.05) for _ in range(200)]
    ratio, lo, hi = bootstrap_ratio_of_medians(a, b)
    assert lo < ratio < hi and lo > 1.1 and hi < 1.3
    same = [10 * rng.lognormvariate(0, 0.05) for _ in range(200)]
    _, lo, hi = bootstrap_ratio_of_medians(a, same)
    assert lo < 1.0 < hi
    assert bootstrap_ratio_of_medians(a, b) == bootstrap_ratio_of_medians(a, b)   # deterministic


def test_a_large_ratio_is_not_within_noise_because_of_a_high_cv():
    """27x with an 11% CV was called 'within noise' by the CV rule: the bootstrap says it differs."""
    a = make_doc("dev", 1.0, seed=1, spread=0.11)
    b = make_doc("dev", 27.0, seed=2, spread=0.11)
    lat = [ln for ln in compare(DocView(a), DocView(b))["lines"] if ln["scenario"] == "latency"]
    assert lat and all(ln["differs"] and ln["ratio"] > 20 and "excludes 1×" in ln["why"] for ln in lat)


def test_same_samples_are_within_noise():
    cmp = compare(DocView(make_doc("dev", seed=1)), DocView(make_doc("dev", seed=1)))
    assert cmp["lines"] and all(ln["noise"] and ln["verdict"] == "within noise" for ln in cmp["lines"])


def test_without_raw_samples_nothing_is_decided():
    row_a = make_doc()["rows"][1]
    row_b = dict(row_a, latency_ms=dict(row_a["latency_ms"], raw=None))
    from edgebench.report.stats import rate
    t = speed_test(rate(row_a), rate(row_b), row_a, row_b)
    assert not t["tested"] and t["differs"] is None and "no raw samples" in t["why"]


def test_the_method_is_stated_in_the_report(tmp_path):
    a = write(tmp_path / "a.json", make_doc("dev", seed=1))
    b = write(tmp_path / "b.json", make_doc("dev", 1.1, seed=2))
    html, md = render_report([a, b], tmp_path / "out", include_reference=False)
    assert "percentile bootstrap" in METHOD and METHOD in md.read_text()
    assert "95% interval" in html.read_text()


# ----------------------------------------------------------------------------------------------
# images, machines, floors

def test_different_images_are_said(tmp_path):
    a = make_doc("dev", target="x86-cpu", image_id="sha256:" + "11" * 32, image_digest="repo@sha256:" + "21" * 32)
    b = make_doc("dev", target="x86-cpu", image_id="sha256:" + "12" * 32, image_digest="repo@sha256:" + "21" * 32)
    diffs = compare(DocView(a), DocView(b))["differences"]
    [d] = [d for d in diffs if d.kind == "image"]
    assert d.what == "container image id" and d.a == "111111111111" and d.b == "121212121212"
    ctx = build_context([write(tmp_path / "a.json", a), write(tmp_path / "b.json", b)], include_reference=False)
    assert ctx["comparisons"][0]["differences"]
    _, md = render_report([tmp_path / "a.json", tmp_path / "b.json"], tmp_path / "out", include_reference=False)
    assert "**Different images**: container image id 111111111111 vs 121212121212" in md.read_text()


def test_floors_are_never_compared_across_machines(tmp_path):
    a, b = make_doc("x86", seed=1), make_doc("arm", seed=2)
    b["environment"]["cpu"]["model"] = "ARM Cortex-A78AE"
    for doc, peak in ((a, 134.4), (b, 20.0)):
        for r in doc["rows"]:
            r["floor"] = {"peak_gflops": peak, "source": "estimate", "floor_ms_per_image": 1.0,
                          "fraction_of_floor": 0.1}
    cmp = compare(DocView(a), DocView(b))
    [m] = [d for d in cmp["differences"] if d.kind == "machine"]
    assert "floors are per machine and not compared" in m.detail
    assert not any("floor" in str(ln["a_text"]) + str(ln["b_text"]) for ln in cmp["lines"])
    assert not any(d.kind == "floor" for d in compare_documents(a, b))


# ----------------------------------------------------------------------------------------------
# compare_documents: what `invoke reproduce` calls

def test_compare_documents_of_an_identical_rerun_is_empty():
    assert compare_documents(make_doc("dev", seed=1), make_doc("dev", seed=1)) == []


def test_compare_documents_flags_every_difference_beyond_noise():
    orig = make_doc("dev", seed=1, target="x86-cpu", image_id="sha256:" + "11" * 32)
    rerun = make_doc("dev", seed=1, target="x86-cpu", image_id="sha256:" + "12" * 32)
    slow = _rows(rerun, backend="onnxruntime", precision="fp32", threads=1, scenario="latency")[0]
    slow["latency_ms"]["raw"] = [x * 1.5 for x in slow["latency_ms"]["raw"]]
    slow["throughput_ips"] /= 1.5
    acc = _rows(rerun, backend="onnxruntime", precision="int8", threads=2, scenario="testset")[0]
    acc["accuracy"] = dict(acc["accuracy"], top1=0.7805)
    gone = _rows(rerun, backend="keras", precision="fp32", threads=2, batch_size=64, scenario="throughput")[0]
    rerun["rows"].remove(gone)
    failed = _rows(rerun, backend="tflite", precision="int8", threads=1, scenario="latency")[0]
    failed.update(status="failed", reason="child crashed")
    diffs = compare_documents(orig, rerun)
    assert all(isinstance(d, Difference) for d in diffs)
    kinds = sorted(d.kind for d in diffs)
    assert kinds == ["accuracy", "image", "missing row", "speed", "status"], [d.to_dict() for d in diffs]
    [speed] = [d for d in diffs if d.kind == "speed"]
    assert "onnxruntime · fp32 · 1 thr · batch 1 (latency)" == speed.what and "slower" in speed.detail
    [a] = [d for d in diffs if d.kind == "accuracy"]
    assert a.a == "78.10%" and a.b == "78.05%" and "5 of 10000" in a.detail


def test_compare_documents_refuses_speed_for_another_model():
    diffs = compare_documents(make_doc("dev"), make_doc("dev", 2.0, model_sha="ff" * 32))
    assert any(d.kind == "model" and d.blocking for d in diffs)


def test_reproduction_report_renders_original_vs_rerun(tmp_path):
    a = write(tmp_path / "orig.json", make_doc("dev", seed=1))
    b = write(tmp_path / "rerun.json", make_doc("dev", 1.3, seed=2))
    html, md = render_report([a, b], tmp_path / "out", reproduction=True)
    text = md.read_text()
    assert "# edgebench reproduction: original vs re-run" in text
    assert "## Original vs re-run:" in text and "differences beyond noise" in text
    assert "## original: dev · host" in text and "## re-run: dev · host" in text
    assert "orin-nano" not in text                       # no reference in a reproduction
    assert "### original: dev" in text.split("## Comparisons")[1]


# ----------------------------------------------------------------------------------------------
# units

def test_every_field_read_has_one_named_unit():
    assert UNITS["telemetry.cpu_percent_mean"].startswith("percent of one core")
    assert UNITS["accuracy.top1"].startswith("fraction")
    assert all(isinstance(u, str) and u for u in UNITS.values())


def test_one_percentile_for_bench_and_report():
    assert percentile([1.0, 2.0, 3.0, 4.0], 50) == 2.5
    import edgebench.report.stats as rs
    assert rs.percentile is percentile
