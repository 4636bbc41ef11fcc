"""External measurements from CSV, and the `edgebench report` command."""
from __future__ import annotations

import pytest
from report_helpers import make_doc, write

from edgebench import cli, results
from edgebench.report import import_csv, render_report

CSV = """device,backend,precision,threads,batch_size,scenario,avg_s,max_s,min_s,repeats,images,top1,note
paper-board,tensorrt,FP16,,32,testset,3.1,3.3,3.0,5,10000,91.2%,from table 2
paper-board,keras,fp32,default,32,testset,"1,111.3",18.7,17.2,5,10000,0.912,
board-b,onnxruntime,int8,4,1,latency,,,,,,,
"""


def _csv(tmp_path, text=CSV, name="ext.csv"):
    p = tmp_path / name
    p.write_text(text)
    return p


def test_import_csv_one_document_per_device(tmp_path):
    p = _csv(tmp_path, CSV.replace("board-b,onnxruntime,int8,4,1,latency,,,,,,,",
                                   "board-b,onnxruntime,int8,4,1,latency,,,,,,,\nboard-b,keras,fp32,4,1,latency,,,,,,,"))
    with pytest.raises(results.ResultsError, match=r"line 4: an ok row needs a measurement"):
        import_csv(p, source="paper")
    p = _csv(tmp_path, CSV.replace("board-b,onnxruntime,int8,4,1,latency,,,,,,,",
                                   "board-b,onnxruntime,int8,4,1,throughput,,,,,,,,").replace(
        "top1,note", "top1,note,throughput_ips").replace(",,,,,,,,", ",,,,,,,,850"))
    docs = import_csv(p, source="paper")
    assert [d["device"] for d in docs] == ["paper-board", "board-b"]
    assert docs[1]["rows"][0]["throughput_ips"] == 850
    assert all(d["imported"]["source"] == "paper" for d in docs)


def test_import_csv_values(tmp_path):
    text = CSV.splitlines()
    text[3] = "board-b,onnxruntime,int8,4,1,latency,,,,,,,"
    p = _csv(tmp_path, "\n".join(text[:3]) + "\n")
    [doc] = import_csv(p, source="a paper, table 2", note="Orin, 15 W")
    assert doc["imported"] == {"source": "a paper, table 2", "note": "Orin, 15 W"}
    assert doc["device"] == "paper-board" and doc["complete"] is True
    trt, keras = doc["rows"]
    assert (trt["backend"], trt["precision"], trt["threads"], trt["batch_size"]) == ("tensorrt", "fp16", None, 32)
    assert trt["accuracy"]["top1"] == pytest.approx(0.912)
    assert trt["testset"] == {"avg_s": 3.1, "max_s": 3.3, "min_s": 3.0, "repeats": 5, "images": 10000, "seconds": None}
    assert "from table 2" in trt["warnings"]
    assert keras["threads"] is None and keras["testset"]["avg_s"] == pytest.approx(1111.3)
    assert keras["accuracy"]["top1"] == pytest.approx(0.912)


def test_import_csv_latency_row_and_devices(tmp_path):
    p = _csv(tmp_path, "backend,scenario,threads,batch_size,p50_ms,p99_ms,mean_ms,std_ms\n"
                       "tflite,latency,2,1,4.5,6.0,4.7,0.3\n"
                       "tflite,latency,,1,,,,\n".replace("tflite,latency,,1,,,,\n", ""))
    [doc] = import_csv(p, source="vendor sheet", device="dev-x")
    [row] = doc["rows"]
    assert doc["device"] == "dev-x"
    assert row["latency_ms"]["median"] == 4.5 and row["latency_ms"]["cv"] == pytest.approx(0.3 / 4.7)
    assert row["accuracy"] is None and "accuracy not reported by the source" in row["warnings"]


@pytest.mark.parametrize("text,match", [
    ("backend,scenario,bogus\nkeras,testset,1\n", "unknown CSV columns"),
    ("backend,avg_s\nkeras,1\n", "lacks the required column 'scenario'"),
    ("backend,scenario,avg_s\nkeras,inference,1\n", "line 2: scenario must be one of"),
    ("backend,scenario,avg_s\nkeras,testset,fast\n", "line 2: column 'avg_s' is not a number"),
    ("backend,scenario,threads,avg_s\nkeras,testset,1.5,3\n", "line 2: column 'threads' must be a positive integer"),
    ("backend,scenario,status,avg_s\nkeras,testset,maybe,3\n", "line 2: status must be one of"),
    ("", "empty CSV"),
    ("backend,scenario\n", "no data rows"),
])
def test_import_csv_errors_name_file_and_line(tmp_path, text, match):
    p = _csv(tmp_path, text)
    with pytest.raises(results.ResultsError, match=match) as info:
        import_csv(p, source="s")
    assert info.value.path == str(p)


def test_import_csv_needs_a_source(tmp_path):
    with pytest.raises(results.ResultsError, match="needs its source"):
        import_csv(_csv(tmp_path, "backend,scenario,avg_s\nkeras,testset,3\n"))


def test_failed_rows_in_csv_need_no_measurement(tmp_path):
    p = _csv(tmp_path, "backend,scenario,status,reason\ntensorrt,testset,failed,engine build ran out of memory\n")
    [doc] = import_csv(p, source="s")
    assert doc["rows"][0]["status"] == "failed" and doc["rows"][0]["reason"].startswith("engine build")


def test_imported_csv_renders_labelled(tmp_path):
    p = _csv(tmp_path, "device,backend,scenario,threads,avg_s,max_s,min_s,images\n"
                       "lab,keras,testset,1,900,910,890,10000\n")
    docs = import_csv(p, source="lab notebook")
    html, md = render_report([], tmp_path / "out", extra_documents=[(d, "ext.csv") for d in docs])
    text = md.read_text()
    assert "lab (imported)" in text and "lab notebook" in text
    assert "orin-nano (seed study) (imported)" in text
    # the reference is compared with local runs only, not with other imported numbers
    assert "## Comparisons" not in text


# ----------------------------------------------------------------------------------------------
# the command

def test_cli_report(tmp_path, capsys):
    docs = [make_doc("dev", 1.0, seed=1), make_doc("dev", 1.2, seed=2)]
    docs[0]["created"], docs[1]["created"] = "2026-01-05T10:00:00Z", "2026-01-12T10:00:00Z"
    a, b = write(tmp_path / "a.json", docs[0]), write(tmp_path / "b.json", docs[1])
    bad = tmp_path / "bad.json"
    bad.write_text("{")
    csv = _csv(tmp_path, "device,backend,scenario,threads,avg_s,images\nlab,keras,testset,1,900,10000\n")
    rc = cli.main(["report", str(a), str(b), str(bad), "--out", str(tmp_path / "out"), "--title", "CLI test",
                   "--import-csv", str(csv), "--source", "lab notebook"])
    out = capsys.readouterr()
    assert rc == 0
    assert f"report: {tmp_path / 'out' / 'report.html'}" in out.out
    assert "bad.json" in out.err
    html = (tmp_path / "out" / "report.html").read_text()
    assert "<title>CLI test</title>" in html
    assert "dev · host · 2026-01-05 10:00 vs dev · host · 2026-01-12 10:00" in html  # runs told apart
    imported = tmp_path / "out" / "imported" / "ext-lab.json"
    assert results.load(imported)["imported"]["source"] == "lab notebook"


def test_cli_report_fails_when_no_file_is_readable(tmp_path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text("[]")
    assert cli.main(["report", str(bad), "--out", str(tmp_path / "out")]) == 1
    assert "no readable results file" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_cli_report_named_input_missing_is_an_error(tmp_path, capsys):
    """`invoke report --results missing.json` used to exit 0 with the seed study alone."""
    rc = cli.main(["report", str(tmp_path / "missing.json"), "--out", str(tmp_path / "out")])
    assert rc == 2
    assert f"{tmp_path / 'missing.json'}: no such file" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_cli_report_reproduction(tmp_path, capsys):
    a, b = write(tmp_path / "a.json", make_doc("dev", seed=1)), write(tmp_path / "b.json", make_doc("dev", seed=1))
    assert cli.main(["report", str(a), str(b), "--reproduction", "--out", str(tmp_path / "out")]) == 0
    assert "0 differences beyond noise" in (tmp_path / "out" / "report.md").read_text()
    assert cli.main(["report", str(a), "--reproduction", "--out", str(tmp_path / "o2")]) == 2


def test_cli_report_help_lists_csv_columns(capsys):
    with pytest.raises(SystemExit):
        cli.main(["report", "--help"])
    out = capsys.readouterr().out
    assert "--import-csv" in out and "throughput_ips" in out and "--baseline" in out


def test_import_csv_top1_unit_is_not_guessed(tmp_path):
    p = _csv(tmp_path, "backend,scenario,avg_s,top1\nkeras,testset,3,79.1\n")
    with pytest.raises(results.ResultsError, match=r"line 2: top1 '79.1' is not a fraction 0..1; write a percent"):
        import_csv(p, source="s")
    [doc] = import_csv(_csv(tmp_path, "backend,scenario,avg_s,top1\nkeras,testset,3,79.1%\n"), source="s")
    assert doc["rows"][0]["accuracy"]["top1"] == pytest.approx(0.791)


# ----------------------------------------------------------------------------------------------
# fuzz: >= 200 generated malformed CSV files -> our own error with a message, no file changed

FUZZ_CASES = 240
GOOD_ROW = {"device": "lab", "backend": "keras", "precision": "fp32", "threads": "2", "batch_size": "32",
            "scenario": "testset", "status": "ok", "avg_s": "17.5", "max_s": "18", "min_s": "17", "repeats": "3",
            "images": "10000", "top1": "0.79", "p50_ms": "4.2", "throughput_ips": "570", "cpu_percent": "190"}
BAD_CELLS = ["", "x", "-1", "1e999", "nan", "inf", "1.5", "0", "79.1", "12%", "--", "1,2,3", "\x00", "\"", "é",
             "1e308", "-0", "default", "None", "ok", "  ", "\ufeff", "9" * 40, "0x10", "1_000", "½"]


def _malformed(rng) -> bytes:
    cols = list(GOOD_ROW)
    row = dict(GOOD_ROW)
    kind = rng.randrange(8)
    if kind == 0:        # a bad value in a typed cell
        for _ in range(rng.randint(1, 3)):
            row[rng.choice(cols)] = rng.choice(BAD_CELLS)
        if all(row[c] == GOOD_ROW[c] for c in cols) or row.get("status") in ("failed", "skipped"):
            row["avg_s"] = "fast"
    elif kind == 1:      # an unknown or repeated column
        cols = cols + [rng.choice(["bogus", "backend", "Top1 ", "avg s", ""])]
        row[cols[-1]] = "1"
    elif kind == 2:      # a required column missing
        cols.remove(rng.choice(["backend", "scenario"]))
    elif kind == 3:      # more cells than columns
        text = ",".join(cols) + "\n" + ",".join(row[c] for c in cols) + ",extra,cells\n"
        return text.encode()
    elif kind == 4:      # not UTF-8 / binary
        return bytes(rng.randrange(256) for _ in range(rng.randint(1, 200))) + b"\xff\xfe\x80"
    elif kind == 5:      # an unknown scenario or status
        row[rng.choice(["scenario", "status"])] = rng.choice(["inference", "maybe", "OKAY", "test set"])
    elif kind == 6:      # an ok row without a measurement
        for c in ("avg_s", "max_s", "min_s", "p50_ms", "throughput_ips"):
            row[c] = ""
    else:                # a header only, or nothing
        return rng.choice([b"", b"\n\n", (",".join(cols) + "\n").encode(), b"\x00\x00"])
    text = ",".join(cols) + "\n" + ",".join(row.get(c, "") for c in cols) + "\n"
    return text.encode("utf-8")


def test_fuzz_csv_import_gives_our_error_and_changes_no_file(tmp_path):
    import random

    rng = random.Random(13)
    seen_errors = 0
    for i in range(FUZZ_CASES):
        data = _malformed(rng)
        p = tmp_path / f"case-{i}.csv"
        p.write_bytes(data)
        before = sorted((f.name, f.stat().st_mtime_ns) for f in tmp_path.iterdir())
        try:
            import_csv(p, source="fuzz")
        except results.ResultsError as exc:
            assert exc.path == str(p) and exc.reason, data
            seen_errors += 1
        except Exception as exc:  # pragma: no cover - the point of the test
            pytest.fail(f"case {i}: raw {type(exc).__name__}: {exc} for input {data!r}")
        assert p.read_bytes() == data
        assert sorted((f.name, f.stat().st_mtime_ns) for f in tmp_path.iterdir()) == before
    assert seen_errors >= 200, f"only {seen_errors} of {FUZZ_CASES} generated inputs were refused"
