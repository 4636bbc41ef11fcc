"""Reports: derived numbers, tables, comparisons, bad input, rendering (HTML + Markdown), templates."""
from __future__ import annotations

import copy
import json
import re
from pathlib import Path

import pytest
from report_helpers import make_doc, write, write_set

from edgebench import results
from edgebench.report import REFERENCE_PATH, ReportError, build_context, render_report
from edgebench.report.columns import build_table
from edgebench.report.compare import compare, comparison_pairs
from edgebench.report.format import fmt_pp, md_escape
from edgebench.report.stats import rate
from edgebench.report.summary import highlights
from edgebench.report.views import DocView

ROOT = Path(__file__).resolve().parents[2]


def _table(view, scenario):
    return build_table([view.row_view(r) for r in view.rows_of(scenario, ok_only=True)], scenario, view.baseline)


def _row(doc, backend, precision, threads, batch, scenario):
    rid = results.row_id(backend, precision, threads, batch, scenario)
    return next(r for r in doc["rows"] if r["id"] == rid)


# ----------------------------------------------------------------------------------------------
# derived numbers

def test_rate_of_testset_and_latency_rows():
    doc = make_doc()
    ts = _row(doc, "keras", "fp32", 1, 64, "testset")
    r = rate(ts)
    assert r["unit"] == "img/s"
    assert r["value"] == pytest.approx(10000 / ts["testset"]["avg_s"])
    assert r["lo"] == pytest.approx(10000 / ts["testset"]["max_s"])
    assert r["hi"] == pytest.approx(10000 / ts["testset"]["min_s"])
    lat = _row(doc, "keras", "fp32", 1, 1, "latency")
    r = rate(lat)
    assert r["value"] == pytest.approx(lat["throughput_ips"])
    assert r["lo"] < r["value"] < r["hi"]
    assert r["cv"] == pytest.approx(lat["latency_ms"]["std"] / lat["latency_ms"]["mean"])
    assert r["spread"] == "IQR" and len(r["samples"]) == 200


def test_rate_of_failed_row_is_none():
    assert rate(results.new_row("tflite", "int8", 1, 1, "latency", status="failed", reason="x")) is None


def test_testset_pass_without_image_count_is_not_compared_with_images_per_second():
    row = results.new_row("keras", "fp32", 1, 32, "testset", testset={"avg_s": 10.0, "max_s": 11.0, "min_s": 9.0})
    assert rate(row)["unit"] == "passes/s"


def test_speedup_is_over_keras_at_the_same_threads_and_batch():
    view = DocView(make_doc())
    row = _row(view.doc, "onnxruntime", "fp32", 2, 32, "throughput")
    base = _row(view.doc, "keras", "fp32", 2, 32, "throughput")
    v = view.row_view(row)
    assert v["speedup"] == pytest.approx(row["throughput_ips"] / base["throughput_ips"])
    assert "2 thr" in v["baseline_label"] and "batch 32" in v["baseline_label"]
    assert view.row_view(base)["is_baseline"]


def test_speedup_needs_a_baseline_row():
    doc = make_doc()
    doc["rows"] = [r for r in doc["rows"] if r["backend"] != "keras"]
    view = DocView(doc)
    assert view.row_view(_row(doc, "onnxruntime", "fp32", 1, 64, "testset"))["speedup"] is None


def test_gflops_derived_from_model_flops_when_row_lacks_it():
    doc = make_doc()
    row = _row(doc, "keras", "fp32", 1, 64, "testset")
    assert row["gflops_achieved"] is None
    v = DocView(doc).row_view(row)
    assert v["gflops_derived"]
    assert v["gflops"] == pytest.approx(10000 / row["testset"]["avg_s"] * 2318804992 / 1e9)


# ----------------------------------------------------------------------------------------------
# accuracy: rows without it are marked, never shown as passed

def test_row_without_accuracy_is_marked():
    view = DocView(make_doc())
    v = view.row_view(_row(view.doc, "tflite", "int8", 1, 64, "testset"))
    assert v["top1"] is None
    assert v["status_label"] == "ok, no accuracy" and v["status_class"] == "warn"
    table = _table(view, "testset")
    row = next(r for r in table["rows"] if r["view"]["backend"] == "tflite")
    top1_col = [c["key"] for c in table["columns"]].index("top1")
    assert row["cells"][top1_col]["text"] == "not measured"
    assert view.counts()["no_accuracy"] == 12  # tflite int8: 2 threads x (testset + latency + 4 batches)


def test_accuracy_borrowed_only_from_the_same_artifact():
    doc = make_doc()
    lat = _row(doc, "onnxruntime", "int8", 1, 1, "latency")
    assert lat["accuracy"] is None
    view = DocView(doc)
    acc, src = view.accuracy(lat)
    assert src == "sibling" and acc["top1"] == pytest.approx(0.781)
    assert view.row_view(lat)["status_label"] == "ok"
    lat["artifact"] = dict(lat["artifact"], sha256="another-file")
    assert DocView(doc).accuracy(lat) == (None, "none")


def test_delta_top1_against_keras_fp32():
    view = DocView(make_doc())
    v = view.row_view(_row(view.doc, "onnxruntime", "int8", 1, 64, "testset"))
    assert v["delta_top1"] == pytest.approx(-0.009)
    assert fmt_pp(v["delta_top1"]) == "-0.90 pp"


def test_failed_and_skipped_rows_show_why_grouped_per_artifact():
    doc = make_doc()
    for t in (1, 2):   # a failed INT8 artifact repeats its reason in every configuration
        for scenario, b in (("testset", 64), ("latency", 1), ("throughput", 8), ("throughput", 32)):
            doc["rows"].append(results.new_row("tflite", "fp16", t, b, scenario, status="skipped",
                                               reason="export failed: no fp16 artifact",
                                               artifact={"path": "model.fp16.tflite", "size_bytes": None,
                                                         "sha256": None}))
    view = DocView(doc)
    assert all(r["view"]["status"] == "ok" for r in _table(view, "latency")["rows"])
    groups = {(g["backend"], g["precision"]): g for g in view.problems()}
    assert "Segmentation fault" in groups[("savedmodel", "fp32")]["reason"]
    assert "TensorRT is not installed" in groups[("tensorrt", "fp16")]["reason"]
    g = groups[("tflite", "fp16")]
    assert g["count"] == 8 and g["artifact"] == "model.fp16.tflite"
    assert g["covers"] == "testset (threads 1, 2); latency (threads 1, 2); throughput (threads 1, 2; batch 8, 32)"
    assert len(view.problems()) == 3   # one line per artifact and reason, not 10


def test_notes_are_footnotes_not_a_column():
    doc = make_doc()
    _row(doc, "onnxruntime", "int8", 1, 1, "latency")["warnings"].append("a long note " * 20)
    table = _table(DocView(doc), "latency")
    assert "notes" not in [c["key"] for c in table["columns"]]
    [marked] = [r for r in table["rows"] if r["marks"]]
    assert table["footnotes"][marked["marks"][0] - 1].startswith("a long note")


def test_every_column_names_its_unit():
    table = _table(DocView(make_doc()), "throughput")
    headers = {c["key"]: c["header"] for c in table["columns"]}
    assert headers["cpu"] == "CPU % (1 core = 100)" and headers["p50"] == "p50 ms"
    assert all(c["tip"] for c in table["columns"])


def test_units_are_not_guessed_from_values():
    doc = make_doc()
    row = _row(doc, "onnxruntime", "fp32", 2, 64, "testset")
    row["accuracy"] = dict(row["accuracy"], top1=79.0)           # percent where a fraction belongs
    row["telemetry"] = dict(row["telemetry"], cpu_percent_mean=190.0)
    v = DocView(doc).row_view(row)
    assert v["top1"] is None                                      # out of its unit's range: not rescaled
    assert v["cpu_pct"] == pytest.approx(190.0)                   # percent of one core: two cores busy


def test_highlight_prefers_a_row_with_measured_accuracy():
    [text] = highlights(DocView(make_doc()))
    assert "Fastest with measured accuracy (test-set pass): onnxruntime · int8 · 2 thr" in text
    assert "Faster but accuracy not measured: tflite · int8 · 2 thr" in text


# ----------------------------------------------------------------------------------------------
# comparisons and the within-noise flag

def test_comparison_across_runs_of_one_device():
    a, b = DocView(make_doc("dev", 1.0, seed=1), "a.json"), DocView(make_doc("dev", 1.25, seed=2), "b.json")
    cmp = compare(a, b)
    assert cmp["kind"] == "same device, same model" and cmp["comparable"]
    assert cmp["lines"] and cmp["unmatched"] == 0
    assert cmp["geomean"] == pytest.approx(1.25, rel=0.03)
    assert all(ln["differs"] and ln["verdict"].endswith("faster") for ln in cmp["lines"])


def test_comparison_across_devices_and_pairs():
    x86 = DocView(make_doc("x86"), "x86.json")
    arm = DocView(make_doc("arm", 0.4, threads=(1, 3, 6)), "arm.json")
    ref = DocView(results.load(REFERENCE_PATH), str(REFERENCE_PATH))
    cmp = compare(x86, arm)
    assert cmp["kind"] == "across devices, same model"
    assert {ln["config"] for ln in cmp["lines"] if ln["scenario"] == "testset"} >= {"keras · fp32 · 1 thr"}
    assert cmp["unmatched"] > 0  # 3 and 6 threads have no x86 counterpart
    pairs = comparison_pairs([x86, arm, ref], ref, with_imported=True)
    assert [(a.device, b.device) for a, b in pairs] == [("x86", "arm"), (ref.device, "x86"), (ref.device, "arm")]
    # by default the imported seed study is compared with nothing
    assert [(a.device, b.device) for a, b in comparison_pairs([x86, arm, ref], ref)] == [("x86", "arm")]


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
    pattern = r"^\| (CPU only|GPU) \| ([^|]+) \| ([\d.]+) \| ([\d.]+) \| ([\d.]+) \|$"
    rows = re.findall(pattern, readme.read_text(), re.M)
    assert len(rows) == 7
    table = [("keras" if d == "CPU only" else "keras-gpu", None if "default" in t else int(t), float(a), float(mx),
              float(mn)) for d, t, a, mx, mn in rows]
    assert table == SEED_TABLE


def test_reference_shows_gpu_speedup_over_cpu_at_same_threads():
    view = DocView(results.load(REFERENCE_PATH))
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
    # runs told apart by device, place and time; the heading's order is the columns' order
    first, second = "x86-test · host · 2026-11-23 17:30", "x86-test · x86-cpu container · 2026-11-27 17:46"
    assert f"### {first} vs {second} (same device, same model, host vs x86-cpu container)" in m
    assert f"| Scenario | Configuration | {first} | {second} | Ratio |" in m
    assert "**Different images**: container image id none (ran on the host) vs e1e1e1e1e1e1" in m
    assert "across devices, same model" in m


def test_corrupt_file_is_named_and_the_rest_renders(tmp_path, capsys):
    paths = write_set(tmp_path / "in")
    (tmp_path / "in" / "notjson.json").write_text("{ this is not json")
    (tmp_path / "in" / "other.json").write_text(json.dumps({"hello": "world"}))
    ctx = build_context(paths + [tmp_path / "in" / "notjson.json", tmp_path / "in" / "other.json"])
    skipped = {Path(s["path"]).name: s["reason"] for s in ctx["skipped"]}
    assert set(skipped) == {"truncated.json", "notjson.json", "other.json"}
    assert "corrupt JSON" in skipped["truncated.json"]
    assert "not an edgebench results file" in skipped["other.json"]
    assert len(ctx["sections"]) == 4  # three good files and the reference
    html, _ = render_report(paths, tmp_path / "out")
    assert "truncated.json" in html.read_text()
    assert "skipped" in capsys.readouterr().err


@pytest.mark.parametrize("version,words", [(0, "schema_version 0"), (99, "newer than this kit")])
def test_other_schema_versions_are_refused_clearly(tmp_path, version, words):
    doc = make_doc()
    doc["schema_version"] = version
    p = write(tmp_path / "old.json", doc)
    ctx = build_context([p, write(tmp_path / "good.json", make_doc())], include_reference=False)
    [s] = ctx["skipped"]
    assert s["path"].endswith("old.json") and words in s["reason"]
    with pytest.raises(ReportError, match=words):   # alone: nothing to render, an error
        build_context([p], include_reference=False)


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
    # odd values never crash the report: the file is named and skipped, or renders with blanks
    assert "good" in [s["view"].device for s in ctx["sections"]]
    assert [s["view"].device for s in ctx["sections"]] == ["bad-values", "good"] or \
        [Path(s["path"]).name for s in ctx["skipped"]] == ["bad.json"]


def test_a_file_that_cannot_be_rendered_is_named_and_skipped(tmp_path, monkeypatch):
    real = DocView.problems

    def problems(self):
        if self.device == "bad":
            raise KeyError("boom")
        return real(self)

    monkeypatch.setattr(DocView, "problems", problems)
    files = [write(tmp_path / "bad.json", make_doc("bad")), write(tmp_path / "good.json", make_doc("good"))]
    ctx = build_context(files, include_reference=False)
    assert [s["view"].device for s in ctx["sections"]] == ["good"]
    [s] = ctx["skipped"]
    assert s["path"].endswith("bad.json") and "cannot be rendered" in s["reason"] and "boom" in s["reason"]


def test_imported_documents_are_labelled(tmp_path):
    doc = make_doc("lab-bench")
    doc["imported"] = {"source": "a paper", "note": "table 3"}
    html, md = render_report([write(tmp_path / "imp.json", doc)], tmp_path / "out", include_reference=False)
    assert "lab-bench (imported)" in md.read_text() and "a paper" in html.read_text()


def test_no_reference_and_labels_of_same_device(tmp_path):
    a = write(tmp_path / "a.json", make_doc("dev", created="2026-11-26T17:30:00Z"))
    b = write(tmp_path / "b.json", make_doc("dev", created="2026-11-26T17:30:00Z"))
    ctx = build_context([a, b], include_reference=False)
    labels = [s["view"].label for s in ctx["sections"]]
    assert len(set(labels)) == 2 and not any("seed" in ln for ln in labels)
    assert len({s["view"].anchor for s in ctx["sections"]}) == 2


def test_baseline_option(tmp_path):
    doc = make_doc()
    ctx = build_context([write(tmp_path / "r.json", doc)], include_reference=False, baseline="onnxruntime")
    table = ctx["sections"][0]["tables"][0]
    assert "vs onnxruntime" in [c["header"] for c in table["columns"]]


def test_markdown_escaping():
    assert md_escape("a|b_c*d") == "a\\|b\\_c\\*d"
    assert md_escape(None) == ""


def test_charts_are_deterministic(tmp_path):
    p = write(tmp_path / "r.json", make_doc())
    render_report([p], tmp_path / "one", include_reference=False)
    render_report([p], tmp_path / "two", include_reference=False)
    for svg in (tmp_path / "one" / "charts").glob("*.svg"):
        assert svg.read_text() == (tmp_path / "two" / "charts" / svg.name).read_text()


def test_document_is_not_modified_by_rendering(tmp_path):
    doc = make_doc()
    before = copy.deepcopy(doc)
    _table(DocView(doc), "testset")
    assert doc == before


def test_one_colour_per_backend_across_charts_and_spread_drawn(tmp_path):
    html, _ = render_report(write_set(tmp_path / "in")[:3], tmp_path / "out")
    text = html.read_text()
    pairs = re.findall(r'data-backend="([^"]+)" data-color="([^"]+)"', text)
    colours = {}
    for backend, colour in pairs:
        colours.setdefault(backend, set()).add(colour)
    assert {"keras", "onnxruntime", "tflite"} <= set(colours)
    assert all(len(c) == 1 for c in colours.values()), colours
    for kind in ("throughput", "threads"):
        svg = text[text.index(f'data-chart="{kind}"'):]
        svg = svg[:svg.index("</svg>")]
        assert 'class="spread"' in svg, f"no spread drawn on the {kind} chart"
    # threads by line style on the throughput chart, not by colour
    thr = text[text.index('data-chart="throughput"'):]
    assert 'stroke-dasharray="7 4"' in thr[:thr.index("</svg>")]


def test_schema_1_files_of_the_kit_still_render(tmp_path):
    measured = sorted(p for p in (ROOT / "docs" / "measurements").glob("*.json")
                      if '"edgebench.results"' in p.read_text())  # deploy-*.json are timing records, not results
    assert measured
    ctx = build_context(measured)                 # plus the seed study
    assert ctx["skipped"] == [] and len(ctx["sections"]) == len(measured) + 1
    html, md = render_report(measured, tmp_path / "out")
    assert "% of floor" in md.read_text() and "CPU % (1 core = 100)" in md.read_text()


def test_untrained_model_shows_no_top1_number():
    """A model at chance (random weights: the GPU study's CIFAR stem) keeps its timing rows, but its top-1 is
    'n/a: untrained', never a number, in the tables and the summary."""
    doc = make_doc()
    for r in doc["rows"]:
        if r.get("accuracy"):
            r["accuracy"] = dict(r["accuracy"], top1=0.1, reference_top1=0.1, delta_top1=0.0)
    view = DocView(doc)
    assert view.accuracy_na.startswith("not applicable")
    v = view.row_view(_row(view.doc, "onnxruntime", "fp32", 1, 64, "testset"))
    assert v["top1"] is None and v["delta_top1"] is None and v["status_label"] == "ok, accuracy n/a"
    table = _table(view, "testset")
    top1_col = [c["key"] for c in table["columns"]].index("top1")
    assert {r["cells"][top1_col]["text"] for r in table["rows"] if r["view"]["status"] == "ok"} <= {
        "n/a: untrained", "not measured"}
    from edgebench.report.summary import highlights

    text = " ".join(highlights(view))
    assert "accuracy not applicable (untrained model)" in text and "top-1" not in text
