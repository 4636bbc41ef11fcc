"""Property-based fuzzing of every input file's loader (issue 20), with hypothesis: 500 generated inputs per
loader, derandomized (the same inputs on every run, so CI is reproducible), no example database.

Each input is a valid document with one change: a typed value replaced by any JSON value, a key deleted, an
unknown key added, a key given twice (YAML), or the text cut or spliced. The outcome must be a valid document or
our own error naming the file, never a traceback, and never nonsense accepted: an accepted document holds no
number that is not finite or beyond 2**44, and a typed place that accepted a value of another kind (a list
where a path was) is a failure. Examples that failed once are kept with @example. The count per loader is
printed at the end of the run (tests/unit/conftest.py)."""
from __future__ import annotations

import copy
import json
import math
from pathlib import Path

import pytest
import yaml

hypothesis = pytest.importorskip("hypothesis", reason="hypothesis (requirements/test.txt) is not installed")
import fuzz_helpers as fuzz  # noqa: E402
from hypothesis import HealthCheck, example, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from edgebench import results  # noqa: E402
from edgebench.bench import suite as suite_mod  # noqa: E402
from edgebench.contracts import invoke_config  # noqa: E402
from edgebench.deploy import inventory, publish  # noqa: E402
from edgebench.deploy.errors import InventoryError, PublishError  # noqa: E402
from edgebench.export import manifest  # noqa: E402
from edgebench.report.csvimport import import_csv  # noqa: E402

N = 500
FUZZ = settings(max_examples=N, deadline=None, derandomize=True, database=None, print_blob=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                       HealthCheck.filter_too_much, HealthCheck.data_too_large])
LIMIT = 2 ** 44

SCALARS = (st.none() | st.booleans() | st.integers(-2 ** 70, 2 ** 70) | st.sampled_from([0, -1, 1, 2 ** 63, 10 ** 30])
           | st.floats(allow_nan=True, allow_infinity=True) | st.sampled_from([1e30, 1e308, -0.0, 0.5])
           | st.text(max_size=12) | st.sampled_from(["", "h:2299", "fp33", "auto", "1e30", "sha256:", "x" * 300]))
VALUES = st.recursive(SCALARS, lambda ch: st.lists(ch, max_size=3) | st.dictionaries(st.text(max_size=6), ch,
                                                                                     max_size=3), max_leaves=5)


def _get(doc, path):
    for k in path:
        doc = doc[k]
    return doc


@st.composite
def mutation(draw, good, typed, closed):
    """(document or text, what was done): one change to `good`, see the module's docstring."""
    doc = copy.deepcopy(good)
    how = draw(st.sampled_from(["replace"] * 4 + ["delete", "add", "cut", "splice"]))
    path = draw(st.sampled_from(typed))
    if how == "replace":
        _get(doc, path[:-1])[path[-1]] = draw(VALUES)
    elif how == "delete" and isinstance(_get(doc, path[:-1]), dict):
        del _get(doc, path[:-1])[path[-1]]
    elif how == "add":
        target = draw(st.sampled_from(closed)) if closed else ()
        _get(doc, target)[draw(st.sampled_from(["colour", "prot", "Port", "images2", "x"]))] = draw(SCALARS)
    if how in ("cut", "splice"):
        return how, path, doc, draw(st.integers(0, 10 ** 6)), draw(st.sampled_from(["[", "{", ": :", "\t", "'",
                                                                                  "\x00", "\xff", ",", "\n-"]))
    return how, path, doc, None, None


def _text(doc, how, at, junk, dump):
    text = dump(doc)
    if how == "cut":
        return text[:at % max(len(text), 1)]
    if how == "splice":
        i = at % max(len(text), 1)
        return text[:i] + junk + text[i:]
    return text


def _sane(loaded, name):
    for v in fuzz.numbers_in(loaded):
        assert math.isfinite(v) and abs(v) <= LIMIT, f"{name}: nonsense accepted: the number {v!r}"


def _run(name, path: Path, text, load, errors, how, key, good, doc, opaque=()):
    path.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8", "surrogatepass"))
    try:
        loaded = load(path)
    except errors as exc:
        first = str(exc).splitlines()[0] if str(exc) else ""
        assert str(path) in first and len(first) > len(str(path)) + 5, f"{name}: unhelpful error {exc!r}"
        assert "Traceback" not in str(exc)
        fuzz.record(name, "refused")
        return
    except Exception as exc:  # pragma: no cover - what this test exists to catch
        pytest.fail(f"{name}: {how} at {key}: raw {type(exc).__name__}: {exc}\n{text!r:.600}")
    fuzz.record(name, "accepted")
    if isinstance(loaded, dict) and isinstance(good, dict):   # an open schema keeps unknown keys as they are
        loaded = {k: v for k, v in loaded.items() if k in good}
    _sane(loaded, name)
    if how == "replace" and not any(key[:len(p)] == p for p in opaque):
        before, after = _get(good, key), _get(doc, key)
        assert after is None or fuzz.kind(after) == fuzz.kind(before), \
            f"{name}: nonsense accepted: {'.'.join(map(str, key))} = {after!r} (a {fuzz.kind(before)} place)"


# --- suite --------------------------------------------------------------------------------------------------

SUITE = {"name": "fuzz", "threads": [1, 2], "pin_threads": True, "test_images": 64, "overhead_check": False,
         "interleave": 1,
         "scenarios": {"latency": {"batch_size": 1, "min_iterations": 3, "min_seconds": 0.1, "max_seconds": 60,
                                   "warmup_iterations": 1, "warmup_seconds": 0.5, "max_iterations": 100},
                       "throughput": {"batch_sizes": [1, 8], "min_iterations": 2},
                       "testset": {"batch_size": 32, "repeats": 2}},
         "runs": [{"backend": "onnxruntime", "precisions": ["fp32", "int8"], "options": {"k": 1}},
                  {"backend": "tflite", "threads": [1], "scenarios": ["latency"]}]}
SUITE_TYPED = [p for p in fuzz.paths(SUITE) if p and p[-1] not in ("name",) and p[:3] != ("runs", 0, "options")]
SUITE_CLOSED = [(), ("scenarios",), ("scenarios", "latency"), ("scenarios", "testset"), ("runs", 0), ("runs", 1)]


def _dump_yaml(doc):
    return yaml.safe_dump(doc, sort_keys=False)


@FUZZ
@given(mutation(SUITE, SUITE_TYPED, SUITE_CLOSED))
@example(("replace", ("scenarios", "testset", "repeats"), dict(SUITE, scenarios=dict(
    SUITE["scenarios"], testset={"batch_size": 32, "repeats": 10 ** 30})), None, None))
def test_fuzz_suite_loader(tmp_path, case):
    how, key, doc, at, junk = case
    text = _text(doc, how, at, junk, _dump_yaml)
    _run("suite", tmp_path / "s.yaml", text, lambda p: suite_mod.load(str(p), cores=2).raw, suite_mod.SuiteError,
         how, key, SUITE, doc)


def test_suite_duplicate_key_text_is_refused(tmp_path):
    p = tmp_path / "s.yaml"
    p.write_text(_dump_yaml(SUITE) + "interleave: 2\n")
    with pytest.raises(suite_mod.SuiteError, match="found key 'interleave' twice"):
        suite_mod.load(str(p), cores=2)


# --- inventory ----------------------------------------------------------------------------------------------

INVENTORY = {"registry": "127.0.0.1:5000/edgebench", "known_hosts": "~/.ssh/known_hosts",
             "devices": [{"name": "orin-1", "target": "jetson-jp512", "label": "Orin #1", "runtime": "nvidia",
                          "l4t_release_file": "/etc/nv_tegra_release", "reserve_gb": 1.5, "docker_api": "1.41",
                          "ssh": {"user": "ubuntu", "host": "192.0.2.10", "port": 22, "identity_file": "~/.ssh/k"}},
                         {"name": "ci-1", "target": "x86-cpu",
                          "ssh": {"user": "root", "host": "127.0.0.1", "port": 2222}}]}
INVENTORY_TYPED = [p for p in fuzz.paths(INVENTORY) if p]
INVENTORY_CLOSED = [(), ("devices", 0), ("devices", 1), ("devices", 0, "ssh"), ("devices", 1, "ssh")]


def _inventory(p):
    inv = inventory.load(p)
    return {"registry": inv.registry, "known_hosts": inv.known_hosts, "devices": inv.devices}


@FUZZ
@given(mutation(INVENTORY, INVENTORY_TYPED, INVENTORY_CLOSED))
@example(("replace", ("devices", 1, "ssh", "port"), {**INVENTORY, "devices": [
    INVENTORY["devices"][0], {**INVENTORY["devices"][1], "ssh": {"user": "root", "host": "h", "port": True}}]},
    None, None))
def test_fuzz_inventory_loader(tmp_path, case):
    how, key, doc, at, junk = case
    text = _text(doc, how, at, junk, _dump_yaml)
    _run("inventory", tmp_path / "devices.yaml", text, _inventory, InventoryError, how, key, INVENTORY, doc)


# --- lock file ----------------------------------------------------------------------------------------------

ENTRY = {"target": "x86-cpu", "repo": "127.0.0.1:5000/edgebench", "digest": "sha256:" + "a" * 64,
         "image_id": "sha256:" + "b" * 64, "size": 2_140_000_000, "l4t": "", "kit_version": "0.1.0",
         "git_revision": "abc", "published_at": "2026-01-01T00:00:00Z",
         "ref": "127.0.0.1:5000/edgebench@sha256:" + "a" * 64}
LOCK = {"schema": 1, "note": "n", "images": {"x86-cpu": ENTRY}}
LOCK_TYPED = [p for p in fuzz.paths(LOCK) if p]
LOCK_CLOSED = [(), ("images", "x86-cpu")]


def _lock(p):
    return {t: e.to_dict() for t, e in publish.read_lock(p).items()}


@FUZZ
@given(mutation(LOCK, LOCK_TYPED, LOCK_CLOSED))
def test_fuzz_lock_file_loader(tmp_path, case):
    how, key, doc, at, junk = case
    _run("lock file", tmp_path / "images.lock.json", _text(doc, how, at, junk, json.dumps), _lock, PublishError,
         how, key, LOCK, doc)


# --- manifest -----------------------------------------------------------------------------------------------

MANIFEST = {"schema": "edgebench.manifest", "schema_version": 1, "created": "2026-11-26T00:00:00Z",
            "model": {"path": "model.keras", "sha256": "a" * 64, "name": "resnet18"},
            "data": {"source": "x.zip", "checksum": "c"}, "options": {"formats": ["onnx-fp32"]},
            "artifacts": [{"name": "onnx-fp32", "format": "onnx", "precision": "fp32", "path": "model.onnx",
                           "size_bytes": 1, "sha256": "b" * 64, "tools": {}, "applied": [], "options": {},
                           "export_seconds": 0.1, "status": "ok", "error": None,
                           "parity": {"passed": True, "reason": None, "images": 100, "top1_agreement": 1.0}}]}
MANIFEST_TYPED = [p for p in fuzz.paths(MANIFEST) if p and p[0] not in ("data", "options", "created")
                  and "tools" not in p and "options" not in p[1:] and p[-1] not in ("error",)]
MANIFEST_OPAQUE = [("model",), ("artifacts", 0, "parity", "reason")]


@FUZZ
@given(mutation(MANIFEST, MANIFEST_TYPED, []))
@example(("replace", ("artifacts", 0, "applied"), {**MANIFEST, "artifacts": [
    {**MANIFEST["artifacts"][0], "applied": [1e30]}]}, None, None))   # found by this fuzzer: accepted before
def test_fuzz_manifest_loader(tmp_path, case):
    how, key, doc, at, junk = case
    _run("manifest", tmp_path / "manifest.json", _text(doc, how, at, junk, json.dumps), manifest.load,
         manifest.ManifestError, how, key, MANIFEST, doc, opaque=MANIFEST_OPAQUE)


# --- results document ---------------------------------------------------------------------------------------

def _results_good():
    doc = results.new_document("local", {"cpu": {}}, {"name": "m", "sha256": "0" * 64}, {"name": "s"})
    doc["rows"].append(results.new_row(
        "onnxruntime", "fp32", 1, 8, "testset", throughput_ips=8000.0,
        latency_ms={"n": 2, "mean": 1.0, "median": 1.0, "p90": 1.0, "raw": [1.0, 1.0]},
        testset={"repeats": 2, "images": 10000, "seconds": [1.2, 1.3], "avg_s": 1.25, "max_s": 1.3, "min_s": 1.2},
        accuracy={"top1": 0.5, "images": 10, "delta_top1": 0.0}, compute="cpu", warnings=["w"]))
    doc["imported"] = {"source": "s", "note": "n"}
    return json.loads(json.dumps(doc))


RESULTS = _results_good()
RESULTS_TYPED = [p for p in fuzz.paths(RESULTS) if p and p[0] not in ("environment", "model", "suite", "kit", "created")
                 and not (len(p) >= 3 and p[2] in ("extra", "artifact", "telemetry", "floor", "cold_start", "reason"))]
RESULTS_OPAQUE = [("rows", 0, "id")]


@FUZZ
@given(mutation(RESULTS, RESULTS_TYPED, []))
@example(("replace", ("rows", 0, "testset", "images"), {**RESULTS, "rows": [
    {**RESULTS["rows"][0], "testset": {**RESULTS["rows"][0]["testset"], "images": 2 ** 63}}]}, None, None))
def test_fuzz_results_loader(tmp_path, case):
    how, key, doc, at, junk = case
    _run("results", tmp_path / "r.json", _text(doc, how, at, junk, json.dumps), results.load, results.ResultsError,
         how, key, RESULTS, doc, opaque=RESULTS_OPAQUE)


# --- CSV import ---------------------------------------------------------------------------------------------

CSV_HEADER = ["device", "backend", "precision", "threads", "batch_size", "scenario", "status", "avg_s", "max_s",
              "min_s", "repeats", "images", "mean_ms", "p50_ms", "throughput_ips", "top1", "size_mb", "note"]
CSV_ROWS = [["board", "tensorrt", "fp16", "", "32", "testset", "ok", "3.1", "3.3", "3.0", "5", "10000", "", "", "",
             "91.2%", "40", "from table 2"],
            ["board", "keras", "fp32", "1", "1", "latency", "ok", "", "", "", "", "", "2.1", "2.0", "476", "0.912",
             "", ""]]
CELL = (st.sampled_from(["", "-1", "1e308", "inf", "nan", "2.1", "0", "1e30", "79.1", "50%", "abc", "fp8", "-",
                         "testset", "latency", "ok", "failed", "9" * 40, "1,111.3", "\"", "a,b"])
        | st.text(max_size=8) | st.integers(-10 ** 12, 10 ** 12).map(str) | st.floats().map(repr))


def _csv_text(rows):
    import csv
    import io

    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows([CSV_HEADER] + rows)
    return buf.getvalue()


@st.composite
def csv_case(draw):
    rows = copy.deepcopy(CSV_ROWS)
    how = draw(st.sampled_from(["cell"] * 5 + ["cut", "splice", "short", "long"]))
    r, c = draw(st.integers(0, len(rows) - 1)), draw(st.integers(0, len(CSV_HEADER) - 1))
    if how == "cell":
        rows[r][c] = draw(CELL)
    elif how == "short":
        rows[r] = rows[r][:c]
    elif how == "long":
        rows[r] = rows[r] + [draw(CELL)]
    text = _csv_text(rows)
    if how in ("cut", "splice"):
        i = draw(st.integers(0, len(text)))
        junk = draw(st.sampled_from(["\"", ",", "\n", "\x00", "\r"]))
        text = text[:i] if how == "cut" else text[:i] + junk + text[i:]
    return how, (r, c), rows, text


@FUZZ
@given(csv_case())
@example(("cut", (1, 12), CSV_ROWS, _csv_text(CSV_ROWS)[:_csv_text(CSV_ROWS).index("2.1") + 1]))
def test_fuzz_csv_import(tmp_path, case):
    how, (r, c), rows, text = case
    p = tmp_path / "ext.csv"
    p.write_text(text, encoding="utf-8", errors="surrogatepass")
    try:
        docs = import_csv(p, source="paper")
    except results.ResultsError as exc:
        assert str(p) in str(exc) and "\n" not in str(exc), repr(exc)
        fuzz.record("CSV import", "refused")
        return
    except Exception as exc:  # pragma: no cover
        pytest.fail(f"CSV {how} at {(r, c)}: raw {type(exc).__name__}: {exc}\n{text!r:.600}")
    fuzz.record("CSV import", "accepted")
    _sane(docs, "CSV import")
    if how == "cut":   # a cut that is accepted ended at a line end: what remains is whole rows, imported as written
        assert text.endswith("\n") or not text.strip()
    unknown = ("", "-", "n/a", "na", "null", "none")   # cells the import reads as unknown (null)
    if how == "cell" and CSV_HEADER[c] in ("avg_s", "mean_ms", "p50_ms", "throughput_ips") and \
            rows[r][c].strip().replace(",", "").lower() not in unknown:
        row = [x for d in docs for x in d["rows"]][r]
        got = {"avg_s": (row.get("testset") or {}).get("avg_s"), "mean_ms": (row.get("latency_ms") or {}).get("mean"),
               "p50_ms": (row.get("latency_ms") or {}).get("median"), "throughput_ips": row.get("throughput_ips")}
        want = float(rows[r][c].replace(",", ""))
        assert got[CSV_HEADER[c]] == pytest.approx(want), f"CSV: {rows[r][c]!r} imported as {got[CSV_HEADER[c]]!r}"


# --- invoke.yaml's edgebench: section ------------------------------------------------------------------------

SECTION = {"run": "resnet34", "model": "resnet34", "artifacts": "artifacts", "results": "results",
           "reports": "reports", "data": "cifar10.zip", "target": "local", "device": "local", "suite": "s.yaml",
           "inventory": "devices.yaml"}


@FUZZ
@given(mutation(SECTION, [(k,) for k in SECTION], [()]))
@example(("replace", ("data",), dict(SECTION, data=""), None, None))   # found by this fuzzer: accepted before
def test_fuzz_invoke_yaml_section(tmp_path, case):
    how, key, doc, at, junk = case
    text = _text({"edgebench": doc}, how, at, junk, _dump_yaml)

    def load(p):
        from edgebench.contracts.schema import load_yaml, yaml_problem

        try:
            cfg = load_yaml(p.read_text(encoding="utf-8", errors="replace"))
        except yaml.YAMLError as exc:
            raise invoke_config.ConfigError(f"{p}: {yaml_problem(exc)}") from None
        except (ValueError, TypeError, RecursionError) as exc:
            raise invoke_config.ConfigError(f"{p}: {type(exc).__name__}: {exc}") from None
        section = cfg.get("edgebench") if isinstance(cfg, dict) else cfg
        out = invoke_config.section(section, str(p))
        assert set(out) <= set(invoke_config.PATH_KEYS) and all(v is None or isinstance(v, str) for v in out.values())
        return out

    _run("invoke.yaml", tmp_path / "invoke.yaml", text, load, invoke_config.ConfigError, how, key, SECTION, doc)
