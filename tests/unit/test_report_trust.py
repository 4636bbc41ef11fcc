"""The report answers "which is fastest, at what cost, and can I trust it" (issue 21): same-measurement runs
on different launchers are compared, imported tables stay apart, a busy machine reaches the headline,
repeated notes collapse, a floor above 100% is explained, and the test set's checksum says what it is of."""
from __future__ import annotations

import re

from report_helpers import add_floors, make_doc, mark_busy, write

from edgebench.report.columns import build_table, collapse_notes
from edgebench.report.compare import comparison_pairs
from edgebench.report.render import build_context, render_report
from edgebench.report.summary import environment_summary, highlights
from edgebench.report.views import DocView


def _view(doc, name):
    return DocView(doc, name)


def test_host_and_container_runs_of_one_measurement_are_paired_wherever_they_come():
    other = make_doc("other", model_sha="11" * 32, created="2026-11-20T10:00:00Z")
    host = make_doc("x86", created="2026-11-23T10:00:00Z")
    box = make_doc("x86", target="x86-cpu", image_id="sha256:" + "e1" * 32, created="2026-11-24T10:00:00Z")
    bigger = make_doc("x86", test_images=2000, created="2026-11-25T10:00:00Z")
    views = [_view(d, n) for d, n in ((other, "other"), (box, "box"), (host, "host"), (bigger, "bigger"))]
    pairs = [(a.path, b.path) for a, b in comparison_pairs(views, None)]
    assert pairs[0] == ("host", "box")          # same model, suite and test set: older first, not the first file
    assert ("host", "bigger") not in pairs and ("box", "bigger") not in pairs  # another test set: not auto-paired
    assert [p for p in pairs if p[0] == "other"] == [("other", "box"), ("other", "host"), ("other", "bigger")]
    assert len(pairs) == len(set(frozenset(p) for p in pairs))  # no pair twice


def test_same_place_repeats_are_not_auto_paired_beyond_the_first_file():
    a, b, c = (make_doc("x86", seed=i, created=f"2026-11-2{i}T10:00:00Z") for i in (1, 2, 3))
    views = [_view(d, n) for d, n in ((a, "a"), (b, "b"), (c, "c"))]
    assert [(x.path, y.path) for x, y in comparison_pairs(views, None)] == [("a", "b"), ("a", "c")]


def test_imported_tables_stay_in_their_own_section_unless_asked(tmp_path):
    p = write(tmp_path / "local.json", make_doc("local", model_sha="35" * 32))
    ctx = build_context([p])
    assert [s["view"].device for s in ctx["imported_sections"]] == ["orin-nano (seed study)"]
    assert not ctx["comparisons"]
    _, md = render_report([p], tmp_path / "out")
    glance = md.read_text().split("## At a glance", 1)[1].split("\n## ", 1)[0]
    assert "Fastest" in glance and glance.count("Fastest") == 1        # the local run's headline only
    assert "GPU" not in glance and "compared with nothing" in glance and "--with-imported" in glance
    assert "## Imported reference tables" in md.read_text()
    ctx = build_context([p], with_imported=True)
    assert [(c["a"].device, c["b"].device) for c in ctx["comparisons"]] == [("orin-nano (seed study)", "local")]
    _, md = render_report([p], tmp_path / "with", with_imported=True)
    glance = md.read_text().split("## At a glance", 1)[1].split("\n## ", 1)[0]
    assert glance.count("Fastest") == 2 and "## Imported reference tables" not in md.read_text()


def test_a_busy_fastest_row_says_so_in_the_headline_and_the_glance_counts_busy_rows(tmp_path):
    doc = mark_busy(make_doc("x86"), every=1)
    [text] = highlights(DocView(doc))
    fastest = re.search(r"Fastest with measured accuracy \(test-set pass\): ([^[]*)\[([^]]*)\]", text)
    assert fastest and fastest.group(2).startswith("measured on a busy machine: others used ")
    quiet = make_doc("x86")
    assert "busy" not in highlights(DocView(quiet))[0]
    _, md = render_report([write(tmp_path / "b.json", doc)], tmp_path / "out", include_reference=False)
    ok = sum(1 for r in doc["rows"] if r["status"] == "ok")
    assert f"**{ok} of {ok} ok rows measured on a busy machine**" in md.read_text()


def test_repeated_notes_of_one_shape_are_one_footnote_with_ranges():
    doc = mark_busy(make_doc("x86"), every=2, seed=4)
    view = DocView(doc)
    rows = [view.row_view(r) for r in view.rows_of("throughput", ok_only=True)]
    busy = [v for v in rows if any(n.startswith("busy machine") for n in v["notes"])]
    assert len(busy) >= 10 and len({n for v in busy for n in v["notes"]}) == len(busy)  # each its own numbers
    table = build_table(rows, "throughput")
    busy_notes = [n for n in table["footnotes"] if "busy machine" in n]
    assert len(busy_notes) == 1 and busy_notes[0].startswith(f"{len(busy)} rows: busy machine: other processes used ")
    lo, hi = map(float, re.search(r"used ([\d.]+)–([\d.]+) cores", busy_notes[0]).groups())
    cores = [r["extra"]["machine_load"]["during"]["other_processes_cores"] for r in doc["rows"]
             if (r.get("extra") or {}).get("machine_load") and r["scenario"] == "throughput"]
    assert (lo, hi) == (round(min(cores), 2), round(max(cores), 2))
    n = table["footnotes"].index(busy_notes[0]) + 1
    assert sum(1 for r in table["rows"] if n in r["marks"]) == len(busy)


def test_collapse_keeps_different_notes_apart_and_a_note_on_every_row_is_common():
    common, notes, marks = collapse_notes([["CV 12% > 10%: noisy", "x 1"], ["CV 15% > 10%: noisy"], ["y"]])
    assert common == [] and notes == ["2 rows: CV 12–15% > 10%: noisy", "x 1", "y"]
    assert marks == [[1, 2], [1], [3]]
    common, notes, _ = collapse_notes([["busy 1.5 cores"], ["busy 0.7 cores"]])
    assert common == ["busy 0.7–1.5 cores"] and notes == []


def test_a_floor_above_100_percent_is_explained_in_its_row():
    doc = add_floors(make_doc("x86"), peak_gflops=1000.0)
    view = DocView(doc)
    above = [view.row_view(r) for r in doc["rows"] if r["status"] == "ok" and r["floor"]["fraction_of_floor"] > 1]
    below = [view.row_view(r) for r in doc["rows"] if r["status"] == "ok" and r["floor"]["fraction_of_floor"] <= 1]
    assert above and below
    for v in above:
        [note] = [n for n in v["notes"] if "of floor" in n]
        assert note.startswith(f"{v['floor_frac'] * 100:.0f}% of floor: faster than the floor")
        assert "calibration GEMM" in note and "lower bound" in note
    assert not any("of floor" in n for v in below for n in v["notes"])
    est = add_floors(make_doc("x86"), peak_gflops=1000.0, method="estimate")
    r = next(r for r in est["rows"] if r["status"] == "ok" and r["floor"]["fraction_of_floor"] > 1)
    assert "estimate from the ISA and the recorded clock" in " ".join(DocView(est).row_view(r)["notes"])


def test_the_test_set_checksum_says_it_is_of_the_source_not_the_subset():
    small, big = make_doc("x86", test_images=1000), make_doc("x86", test_images=2000)
    s_small, s_big = (dict(environment_summary(DocView(d)))["Test set"] for d in (small, big))
    assert s_small.startswith("1,000 images from cifar10-test.zip") and s_big.startswith("2,000 images from")
    assert "source checksum cdcdcdcdcdcd (of the whole source, not of these images)" in s_small
    from edgebench.report.identity import identity_differences

    [d] = [d for d in identity_differences(DocView(small), DocView(big)) if d.kind == "test set"]
    assert (d.a, d.b) == ("1000 images from source cdcdcdcdcdcd", "2000 images from source cdcdcdcdcdcd")



def test_the_command_keeps_imported_tables_apart_unless_with_imported(tmp_path):
    from edgebench import cli

    p = write(tmp_path / "local.json", make_doc("local", model_sha="35" * 32))
    assert cli.main(["report", str(p), "--out", str(tmp_path / "apart")]) == 0
    apart = (tmp_path / "apart" / "report.md").read_text()
    assert "## Imported reference tables" in apart and "## Comparisons" not in apart
    assert cli.main(["report", str(p), "--with-imported", "--out", str(tmp_path / "with")]) == 0
    mixed = (tmp_path / "with" / "report.md").read_text()
    assert "## Imported reference tables" not in mixed and "## Comparisons" in mixed and "cross-model" in mixed
