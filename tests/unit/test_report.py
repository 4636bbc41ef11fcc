"""Reports: derived numbers, tables, comparisons, bad input, rendering (HTML + Markdown), templates."""
from __future__ import annotations

import copy
import json
import re
from pathlib import Path

import pytest

from edgebench import results
from edgebench.report import REFERENCE_PATH, build_context, render_report
from edgebench.report import data as rd
from edgebench.report.render import PACKAGED_TEMPLATES, REPO_TEMPLATES, TEMPLATE_NAMES, md_escape

from report_helpers import make_doc, write, write_set

ROOT = Path(__file__).resolve().parents[2]


def _row(doc, backend, precision, threads, batch, scenario):
    rid = results.row_id(backend, precision, threads, batch, scenario)
    return next(r for r in doc["rows"] if r["id"] == rid)


# ----------------------------------------------------------------------------------------------
# derived numbers

def test_rate_of_testset_and_latency_rows():
    doc = make_doc()
    ts = _row(doc, "keras", "fp32", 1, 64, "testset")
    r = rd.rate(ts)
    assert r["unit"] == "img/s"
    assert r["value"] == pytest.approx(10000 / ts["testset"]["avg_s"])
    assert r["lo"] == pytest.approx(10000 / ts["testset"]["max_s"])
    assert r["hi"] == pytest.approx(10000 / ts["testset"]["min_s"])
    lat = _row(doc, "keras", "fp32", 1, 1, "latency")
    r = rd.rate(lat)
    assert r["value"] == pytest.approx(lat["throughput_ips"])
    assert r["lo"] < r["value"] < r["hi"]
    assert r["cv"] == pytest.approx(lat["latency_ms"]["std"] / lat["latency_ms"]["mean"])


def test_rate_of_failed_row_is_none():
    assert rd.rate(results.new_row("tflite", "int8", 1, 1, "latency", status="failed", reason="x")) is None


def test_testset_pass_without_image_count_is_not_compared_with_images_per_second():
    row = results.new_row("keras", "fp32", 1, 32, "testset", testset={"avg_s": 10.0, "max_s": 11.0, "min_s": 9.0})
    assert rd.rate(row)["unit"] == "passes/s"


def test_speedup_is_over_keras_at_the_same_threads_and_batch():
    view = rd.DocView(make_doc())
    row = _row(view.doc, "onnxruntime", "fp32", 2, 32, "throughput")
    base = _row(view.doc, "keras", "fp32", 2, 32, "throughput")
    v = view.row_view(row)
    assert v["speedup"] == pytest.approx(row["throughput_ips"] / base["throughput_ips"])
    assert "2 thr" in v["baseline_label"] and "batch 32" in v["baseline_label"]
    assert view.row_view(base)["is_baseline"]


def test_speedup_needs_a_baseline_row():
    doc = make_doc()
    doc["rows"] = [r for r in doc["rows"] if r["backend"] != "keras"]
    view = rd.DocView(doc)
    assert view.row_view(_row(doc, "onnxruntime", "fp32", 1, 64, "testset"))["speedup"] is None


def test_gflops_derived_from_model_flops_when_row_lacks_it():
    doc = make_doc()
    row = _row(doc, "keras", "fp32", 1, 64, "testset")
    assert row["gflops_achieved"] is None
    v = rd.DocView(doc).row_view(row)
    assert v["gflops_derived"]
    assert v["gflops"] == pytest.approx(10000 / row["testset"]["avg_s"] * 2318804992 / 1e9)


# ----------------------------------------------------------------------------------------------
# accuracy: rows without it are marked, never shown as passed

def test_row_without_accuracy_is_marked():
    view = rd.DocView(make_doc())
    v = view.row_view(_row(view.doc, "tflite", "int8", 1, 64, "testset"))
    assert v["top1"] is None
    assert v["status_label"] == "ok, no accuracy" and v["status_class"] == "warn"
    table = view.table("testset")
    row = next(r for r in table["rows"] if r["view"]["backend"] == "tflite")
    top1_col = [c["key"] for c in table["columns"]].index("top1")
    assert row["cells"][top1_col]["text"] == "not measured"
    assert view.counts()["no_accuracy"] == 12  # tflite int8: 2 threads x (testset + latency + 4 batches)


def test_accuracy_borrowed_only_from_the_same_artifact():
    doc = make_doc()
    lat = _row(doc, "onnxruntime", "int8", 1, 1, "latency")
    assert lat["accuracy"] is None
    view = rd.DocView(doc)
    acc, src = view.accuracy(lat)
    assert src == "sibling" and acc["top1"] == pytest.approx(0.781)
    assert view.row_view(lat)["status_label"] == "ok"
    lat["artifact"] = dict(lat["artifact"], sha256="another-file")
    assert rd.DocView(doc).accuracy(lat) == (None, "none")


def test_delta_top1_against_keras_fp32():
    view = rd.DocView(make_doc())
    v = view.row_view(_row(view.doc, "onnxruntime", "int8", 1, 64, "testset"))
    assert v["delta_top1"] == pytest.approx(-0.009)
    assert rd._delta_text(v["delta_top1"]) == "-0.90 pp"


def test_failed_and_skipped_rows_show_why():
    view = rd.DocView(make_doc())
    table = view.table("latency")
    by_backend = {r["view"]["backend"]: r for r in table["rows"]}
    assert by_backend["savedmodel"]["view"]["status"] == "failed"
    assert "Segmentation fault" in by_backend["savedmodel"]["notes"][0]
    assert "TensorRT is not installed" in by_backend["tensorrt"]["notes"][0]
    assert table["has_notes"]


def test_empty_columns_are_dropped():
    view = rd.DocView(make_doc())
    keys = [c["key"] for c in view.table("latency")["columns"]]
    assert "p50" in keys and "ts_avg" not in keys and "power" not in keys
    keys = [c["key"] for c in view.table("testset")["columns"]]
    assert "ts_avg" in keys and "p50" not in keys


def test_highlight_prefers_a_row_with_measured_accuracy():
    [text] = rd.highlights(rd.DocView(make_doc()))
    assert "Fastest with measured accuracy (test-set pass): onnxruntime · int8 · 2 thr" in text
    assert "Faster but accuracy not measured: tflite · int8 · 2 thr" in text


# ----------------------------------------------------------------------------------------------
# comparisons and the within-noise flag

def test_comparison_across_runs_of_one_device():
    a, b = rd.DocView(make_doc("dev", 1.0, seed=1), "a.json"), rd.DocView(make_doc("dev", 1.25, seed=2), "b.json")
    cmp = rd.compare(a, b)
    assert cmp["kind"] == "across runs of the same device"
    assert cmp["lines"] and cmp["unmatched"] == 0
    assert cmp["geomean"] == pytest.approx(1.25, rel=0.03)
    assert all(not l["noise"] and l["verdict"].endswith("faster") for l in cmp["lines"])


def test_same_speed_is_within_noise():
    a, b = rd.DocView(make_doc("dev", 1.0, seed=1)), rd.DocView(make_doc("dev", 1.0, seed=2))
    cmp = rd.compare(a, b)
    lat = [l for l in cmp["lines"] if l["scenario"] == "latency"]
    assert lat and all(l["noise"] and l["why"] == "spreads overlap" for l in lat)
    assert all(l["verdict"].startswith("within noise") for l in lat)


def test_high_cv_is_too_noisy_to_tell():
    a, b = rd.DocView(make_doc("dev", 1.0, seed=1)), rd.DocView(make_doc("dev", 1.5, seed=2, spread=0.3))
    lat = [l for l in rd.compare(a, b)["lines"] if l["scenario"] == "latency"]
    assert lat and all(l["noise"] and "too high to tell" in l["why"] for l in lat)


def test_noise_verdict_rules():
    assert rd.noise_verdict({"lo": 1, "hi": 2, "cv": 0.01}, {"lo": 3, "hi": 4, "cv": 0.01}) == (False, "spreads apart")
    assert rd.noise_verdict({"lo": 1, "hi": 3, "cv": 0.01}, {"lo": 2, "hi": 4, "cv": 0.01})[0]
    assert rd.noise_verdict({"lo": 1, "hi": 2, "cv": 0.2}, {"lo": 3, "hi": 4, "cv": None})[0]
    assert rd.noise_verdict({"lo": None, "hi": None, "cv": None}, {"lo": 3, "hi": 4}) == (False, "spread unknown")


def test_comparison_across_devices_and_pairs():
    x86 = rd.DocView(make_doc("x86"), "x86.json")
    arm = rd.DocView(make_doc("arm", 0.4, threads=(1, 3, 6)), "arm.json")
    ref = rd.DocView(results.load(REFERENCE_PATH), str(REFERENCE_PATH))
    cmp = rd.compare(x86, arm)
    assert cmp["kind"] == "across devices"
    assert {l["config"] for l in cmp["lines"] if l["scenario"] == "testset"} >= {"keras · fp32 · 1 thr"}
    assert cmp["unmatched"] > 0  # 3 and 6 threads have no x86 counterpart
    pairs = rd.comparison_pairs([x86, arm, ref], ref)
    assert [(a.device, b.device) for a, b in pairs] == [("x86", "arm"), (ref.device, "x86"), (ref.device, "arm")]


def test_seed_study_next_to_a_local_run():
    ref = rd.DocView(results.load(REFERENCE_PATH))
    local = rd.DocView(make_doc("x86"))
    cmp = rd.compare(ref, local)
    [line] = [l for l in cmp["lines"] if l["scenario"] == "testset"]  # keras, 1 thread: the only shared setting
    assert line["config"] == "keras · fp32 · 1 thr"
    assert "1,111.4 s (1,110.8–1,111.7)" in line["a_text"]
    assert line["ratio"] == pytest.approx((10000 / _row(local.doc, "keras", "fp32", 1, 64, "testset")["testset"]["avg_s"])
                                          / (10000 / 1111.3610269228618))


# ----------------------------------------------------------------------------------------------
# the seed-study reference file

SEED_TABLE = [  # shared/data/seed-study/README.md, transcribed independently of the JSON
    ("keras", 1, 1111.3610269228618, 1111.7148716449738, 1110.8259530067444),
    ("keras", 3, 400.5844699541728, 401.31527638435364, 400.1734607219696),
    ("keras", 6, 218.26513568560281, 220.73794174194336, 216.96071934700012),
    ("keras-gpu", 1, 18.36625822385152, 20.129164934158325, 17.39278745651245),
    ("keras-gpu", 3, 17.606494108835857, 18.5928955078125, 17.10651993751526),
    ("keras-gpu", 6, 17.755841970443726, 18.757434368133545, 17.233683824539185),
    ("keras-gpu", None, 17.776134967803955, 18.74548363685608, 17.259194135665894),
]


def test_reference_file_is_the_seed_study_table():
    doc = results.load(REFERENCE_PATH)
    assert doc["imported"]["source"] and "not measured by edgebench" in doc["imported"]["note"]
    assert doc["environment"]["device_model"] == "NVIDIA Jetson Orin Nano"
    assert doc["environment"]["tensorflow"] == "2.12.0+nv23.06"
    assert doc["model"]["name"] == "resnet34-cifar"
    got = [(r["backend"], r["threads"], r["testset"]["avg_s"], r["testset"]["max_s"], r["testset"]["min_s"])
           for r in doc["rows"]]
    assert got == SEED_TABLE
    for r in doc["rows"]:
        assert r["scenario"] == "testset" and r["status"] == "ok" and r["precision"] == "fp32"
        assert r["accuracy"] is None and "accuracy not reported by the study" in r["warnings"]
        assert r["testset"]["images"] == 10000
    assert len({r["id"] for r in doc["rows"]}) == len(doc["rows"])


def test_reference_matches_the_study_readme_where_present():
    readme = ROOT.parent / "shared" / "data" / "seed-study" / "README.md"
    if not readme.is_file():
        pytest.skip(f"{readme} not here (only in the development checkout)")
    rows = re.findall(r"^\| (CPU only|GPU) \| ([^|]+) \| ([\d.]+) \| ([\d.]+) \| ([\d.]+) \|$", readme.read_text(), re.M)
    assert len(rows) == 7
    table = [("keras" if d == "CPU only" else "keras-gpu", None if "default" in t else int(t), float(a), float(mx),
              float(mn)) for d, t, a, mx, mn in rows]
    assert table == SEED_TABLE


def test_reference_shows_gpu_speedup_over_cpu_at_same_threads():
    view = rd.DocView(results.load(REFERENCE_PATH))
    gpu1 = next(r for r in view.rows if r["backend"] == "keras-gpu" and r["threads"] == 1)
    assert view.row_view(gpu1)["speedup"] == pytest.approx(1111.3610269228618 / 18.36625822385152)
    default = next(r for r in view.rows if r["threads"] is None)
    assert view.row_view(default)["speedup"] is None  # no CPU row at the framework default


# ----------------------------------------------------------------------------------------------
# rendering and bad input

def test_render_report_writes_html_md_and_charts(tmp_path):
    paths = write_set(tmp_path / "in")
    html, md = render_report(paths, tmp_path / "out", title="Test report")
    h, m = html.read_text(), md.read_text()
    assert h.startswith("<!DOCTYPE html>") and "<title>Test report</title>" in h
    # self-contained: no external resources
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", h)
    assert "<link" not in h and "@import" not in h
    for kind in ("latency", "throughput", "threads", "accuracy", "comparison"):
        assert f'data-chart="{kind}"' in h
    charts = sorted(p.name for p in (tmp_path / "out" / "charts").glob("*.svg"))
    assert charts and all(f"]({'charts/' + c})" in m for c in charts)
    # the same tables in both
    assert m.count("| onnxruntime | int8 |") == h.count("<td>onnxruntime</td><td>int8</td>")
    assert "⚠️ ok, no accuracy" in m and "❌ failed" in m and "⏭️ skipped" in m
    assert "orin-nano (seed study) (imported)" in m and "Imported, not measured by edgebench." in m
    assert "x86-test · x86-friday.json vs x86-test · x86-monday.json" in m
    assert "across runs of the same device" in m and "across devices" in m


def test_corrupt_file_is_named_and_the_rest_renders(tmp_path, capsys):
    paths = write_set(tmp_path / "in")
    (tmp_path / "in" / "notjson.json").write_text("{ this is not json")
    (tmp_path / "in" / "other.json").write_text(json.dumps({"hello": "world"}))
    ctx = build_context(paths + [tmp_path / "in" / "notjson.json", tmp_path / "in" / "other.json",
                                 tmp_path / "in" / "missing.json"])
    skipped = {Path(s["path"]).name: s["reason"] for s in ctx["skipped"]}
    assert set(skipped) == {"truncated.json", "notjson.json", "other.json", "missing.json"}
    assert "corrupt JSON" in skipped["truncated.json"]
    assert "not an edgebench results file" in skipped["other.json"]
    assert "cannot read" in skipped["missing.json"]
    assert len(ctx["sections"]) == 4  # three good files and the reference
    html, _ = render_report(paths, tmp_path / "out")
    assert "truncated.json" in html.read_text()
    assert "skipped" in capsys.readouterr().err


@pytest.mark.parametrize("version,words", [(0, "cannot be upgraded"), (99, "newer than this kit")])
def test_other_schema_versions_are_refused_clearly(tmp_path, version, words):
    doc = make_doc()
    doc["schema_version"] = version
    p = write(tmp_path / "old.json", doc)
    ctx = build_context([p], include_reference=False)
    [s] = ctx["skipped"]
    assert s["path"].endswith("old.json") and words in s["reason"]


def test_partial_sweep_renders_with_a_banner(tmp_path):
    doc = make_doc()
    doc["complete"] = False
    doc["rows"] = doc["rows"][:5]
    html, md = render_report([write(tmp_path / "partial.json", doc)], tmp_path / "out", include_reference=False)
    assert "incomplete sweep" in html.read_text() and "incomplete sweep" in md.read_text()


def test_malformed_row_values_skip_only_that_file(tmp_path):
    bad = make_doc("bad-values")
    bad["rows"][0]["testset"] = {"avg_s": "slow", "max_s": None}
    bad["rows"][1]["latency_ms"] = [1, 2, 3]
    bad["rows"][2]["threads"] = "two"
    good = make_doc("good")
    ctx = build_context([write(tmp_path / "bad.json", bad), write(tmp_path / "good.json", good)],
                        include_reference=False)
    # odd values render as blanks rather than crashing the report
    assert [s["view"].device for s in ctx["sections"]] == ["bad-values", "good"]
    assert ctx["skipped"] == []


def test_a_file_that_cannot_be_rendered_is_named_and_skipped(tmp_path, monkeypatch):
    real = rd.DocView.table

    def table(self, scenario):
        if self.device == "bad":
            raise KeyError("boom")
        return real(self, scenario)

    monkeypatch.setattr(rd.DocView, "table", table)
    ctx = build_context([write(tmp_path / "bad.json", make_doc("bad")), write(tmp_path / "good.json", make_doc("good"))],
                        include_reference=False)
    assert [s["view"].device for s in ctx["sections"]] == ["good"]
    [s] = ctx["skipped"]
    assert s["path"].endswith("bad.json") and "cannot be rendered" in s["reason"] and "boom" in s["reason"]


def test_imported_documents_are_labelled(tmp_path):
    doc = make_doc("lab-bench")
    doc["imported"] = {"source": "a paper", "note": "table 3"}
    html, md = render_report([write(tmp_path / "imp.json", doc)], tmp_path / "out", include_reference=False)
    assert "lab-bench (imported)" in md.read_text() and "a paper" in html.read_text()


def test_no_reference_and_labels_of_same_device(tmp_path):
    a = write(tmp_path / "a.json", make_doc("dev"))
    b = write(tmp_path / "b.json", make_doc("dev"))
    ctx = build_context([a, b], include_reference=False)
    labels = [s["view"].label for s in ctx["sections"]]
    assert len(set(labels)) == 2 and not any("seed" in l for l in labels)
    assert len({s["view"].anchor for s in ctx["sections"]}) == 2


def test_nothing_to_show(tmp_path):
    html, md = render_report([], tmp_path / "out", include_reference=False)
    assert "No results to show" in html.read_text() and "No results to show" in md.read_text()


def test_baseline_option(tmp_path):
    doc = make_doc()
    ctx = build_context([write(tmp_path / "r.json", doc)], include_reference=False, baseline="onnxruntime")
    table = ctx["sections"][0]["tables"][0]
    assert "vs onnxruntime" in [c["header"] for c in table["columns"]]


def test_markdown_escaping():
    assert md_escape("a|b_c*d") == "a\\|b\\_c\\*d"
    assert md_escape(None) == ""


def test_packaged_templates_match_the_repository():
    """templates/ is the source of truth; edgebench/templates/ ships the same files in the wheel."""
    if not (REPO_TEMPLATES / TEMPLATE_NAMES[0]).is_file():
        pytest.skip("not a repository checkout")
    for name in TEMPLATE_NAMES:
        assert (PACKAGED_TEMPLATES / name).read_text() == (REPO_TEMPLATES / name).read_text(), (
            f"src/edgebench/templates/{name} differs from templates/{name}: "
            f"cp templates/report.*.j2 src/edgebench/templates/")


def test_packaged_templates_alone_render(tmp_path):
    p = write(tmp_path / "r.json", make_doc())
    html, _ = render_report([p], tmp_path / "out", template_dir=PACKAGED_TEMPLATES)
    assert "data-chart" in html.read_text()


def test_charts_are_deterministic(tmp_path):
    p = write(tmp_path / "r.json", make_doc())
    render_report([p], tmp_path / "one", include_reference=False)
    render_report([p], tmp_path / "two", include_reference=False)
    for svg in (tmp_path / "one" / "charts").glob("*.svg"):
        assert svg.read_text() == (tmp_path / "two" / "charts" / svg.name).read_text()


def test_document_is_not_modified_by_rendering(tmp_path):
    doc = make_doc()
    before = copy.deepcopy(doc)
    rd.DocView(doc).table("testset")
    assert doc == before


def test_stale_charts_of_an_earlier_report_are_removed(tmp_path):
    p = write(tmp_path / "r.json", make_doc())
    out = tmp_path / "out"
    (out / "charts").mkdir(parents=True)
    (out / "charts" / "old-device-latency.svg").write_text("<svg/>")
    render_report([p], out, include_reference=False)
    names = {c.name for c in (out / "charts").glob("*.svg")}
    assert "old-device-latency.svg" not in names and names
