"""Trust (issue 13), bench side, piece by piece: the checks behind each refusal, on real files and real
(tmpfs) file systems: a read-only folder, a full disk."""
from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from trust_rig import make_artifacts

from edgebench import results
from edgebench.bench import calibrate, floor, resume, rows
from edgebench.bench import suite as suite_mod
from edgebench.bench.checks import Provenance, check_out
from edgebench.bench.errors import BenchError, write_error
from edgebench.bench.harness import save_test_arrays
from edgebench.bench.reference import width_problem
from edgebench.bench.runner import check_output_width
from edgebench.contracts.request import artifacts_not_found
from edgebench.launchers import BenchRequest, get_launcher
from edgebench.launchers.container import HostPaths
from edgebench.machine import load as machine


@pytest.fixture
def tmpfs(tmp_path):
    """Mount a small tmpfs (root with CAP_SYS_ADMIN only): `mount(options)` -> its folder."""
    mounted = []

    def mount(options: str) -> Path:
        d = tmp_path / f"fs{len(mounted)}"
        d.mkdir()
        r = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(d)], capture_output=True, text=True)
        if r.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here ({r.stderr.strip()}): needs root with CAP_SYS_ADMIN")
        mounted.append(d)
        return d

    yield mount
    for d in mounted:
        subprocess.run(["umount", "-l", str(d)], capture_output=True)


# --- 1 ----------------------------------------------------------------------------------------------------

def test_trust_1_manifest_check_names_both_hashes(tmp_path):
    art = make_artifacts(tmp_path / "a")
    prov = Provenance(art)
    model = art / "model.keras"
    assert prov.verify("keras", "fp32", model)["verified"]
    model.write_bytes(b"a different model.keras beside the old manifest")
    with pytest.raises(BenchError) as err:
        Provenance(art).verify("keras", "fp32", model)
    expected = json.loads((art / "manifest.json").read_text())["model"]["sha256"]
    from edgebench.util import sha256_file

    assert expected in str(err.value) and sha256_file(model) in str(err.value)
    lenient = Provenance(art, allow_unverified=True)
    assert lenient.verify("keras", "fp32", model)["verified"] is False and lenient.notes


def test_trust_1_no_manifest_refused_unless_overridden(tmp_path):
    (tmp_path / "model.keras").write_bytes(b"x")
    with pytest.raises(BenchError, match="no export manifest"):
        Provenance(tmp_path)
    assert Provenance(tmp_path, allow_unverified=True).notes


# --- 2 ----------------------------------------------------------------------------------------------------

def test_trust_2_check_out(tmp_path):
    out = tmp_path / "r.json"
    check_out(out)  # new file: fine
    doc = results.new_document("local", {}, {}, {})
    results.ResultsWriter(out, doc)
    with pytest.raises(BenchError, match="refusing to overwrite"):
        check_out(out)
    check_out(out, force=True)
    check_out(out, resume=True)
    notes = tmp_path / "notes.json"
    notes.write_text('{"mine": true}')
    with pytest.raises(BenchError, match="not an edgebench results file"):
        check_out(notes, force=True)


def test_trust_readonly_out_folder_is_one_line(tmpfs):
    ro = tmpfs("ro,size=1m")
    with pytest.raises(BenchError, match="not writable"):
        check_out(ro / "r.json")
    req = BenchRequest(artifacts=str(ro), out=str(ro / "sub" / "r.json"))
    with pytest.raises(BenchError, match="not writable"):
        get_launcher("local").launch(req)


# --- disk full: the test arrays and the results ------------------------------------------------------------

def test_trust_disk_full_writing_test_arrays_says_path_and_size(tmpfs):
    small = tmpfs("size=64k")
    x = np.zeros((200, 32, 32, 3), np.uint8)  # 600 KB
    target = small / ".edgebench-cache" / "test.npz"
    target.parent.mkdir()  # the harness makes its cache folder first
    with pytest.raises(BenchError) as err:
        save_test_arrays(target, x, np.zeros(200, np.int64))
    msg = str(err.value)
    assert "disk full" in msg and str(target) in msg and "needed about 0.6 MB" in msg and "free" in msg
    assert not target.exists() and not [p for p in target.parent.iterdir()]  # no half file left


def test_trust_disk_full_writing_results_keeps_the_file_valid(tmpfs):
    small = tmpfs("size=64k")
    out = small / "r.json"
    writer = results.ResultsWriter(out, results.new_document("local", {}, {}, {}))
    (small / "filler").write_bytes(b"\0" * (64 * 1024 - len(out.read_bytes()) - 4096))
    row = results.new_row("onnxruntime", "fp32", 1, 8, "latency", latency_ms={"raw": [1.0] * 3000})
    with pytest.raises(OSError) as err:
        writer.add(row)
    assert err.value.errno == errno.ENOSPC
    msg = str(write_error(out, err.value, needed=70000, what="write the results to"))
    assert "disk full" in msg and str(out) in msg and "needed about" in msg
    assert results.load(out)["rows"] == []  # still the last valid file


def test_trust_write_error_kinds(tmp_path):
    d = tmp_path / "d"
    d.mkdir()
    assert "is a folder" in str(write_error(d, OSError(errno.EISDIR, "Is a directory")))
    assert "not writable" in str(write_error(tmp_path / "x", OSError(errno.EROFS, "Read-only file system")))


# --- 5 ----------------------------------------------------------------------------------------------------

def _suite():
    return suite_mod.parse({"threads": [1], "scenarios": {"latency": {"batch_size": 1}},
                            "runs": [{"backend": "onnxruntime"}, {"backend": "tflite"}]}, "t.yaml", cores=2)


def test_trust_5_resume_keeps_only_clean_groups(tmp_path):
    s = _suite()
    rec = resume.request_record(s, 64, {"model.keras": "a" * 64}, "data", "keras-call")
    doc = results.new_document("local", {"cpu": {}}, {}, {})
    doc["request"] = rec
    doc["rows"] = [results.new_row("onnxruntime", "fp32", 1, 1, "latency"),
                   results.new_row("tflite", "fp32", 1, 1, "latency", status="failed", reason="backend process died")]
    doc["complete"] = True
    out = tmp_path / "r.json"
    out.write_text(json.dumps(doc))
    old, done = resume.resumable(out, {"request": rec, "environment": {}, "created": "now"}, s.groups)
    assert done == {("onnxruntime", "fp32", 1)} and [r["backend"] for r in old["rows"]] == ["onnxruntime"]
    assert old["complete"] is False
    other = dict(rec, reference="onnxruntime", artifacts={"model.keras": "b" * 64})
    with pytest.raises(BenchError, match="artifacts differ .*reference differs"):
        resume.resumable(out, {"request": other, "environment": {}, "created": "now"}, s.groups)


def test_trust_5_resume_of_a_file_without_request_refused(tmp_path):
    out = tmp_path / "old.json"
    out.write_text(json.dumps(results.new_document("local", {}, {}, {})))
    with pytest.raises(BenchError, match="records no request"):
        resume.resumable(out, {"request": {}, "environment": {}, "created": "now"}, _suite().groups)


# --- 8 ----------------------------------------------------------------------------------------------------

def test_trust_8_output_width_checks():
    assert width_problem([64, 10], "m") is None
    assert "(7,)" in width_problem([64, 7], "m.keras")
    with pytest.raises(ValueError, match="10 classes"):
        check_output_width(np.zeros((1, 7)), "tflite")
    check_output_width(np.zeros((1, 10)), "tflite")


# --- noise and the floor ----------------------------------------------------------------------------------

def test_noise_busy_machine_is_marked():
    before = machine.snapshot()
    assert before["loadavg"] is not None
    # a process that is not ours (its parent exits at once) burns a core for a second
    subprocess.run(["sh", "-c", "timeout 1.2 sh -c 'while :; do :; done' >/dev/null 2>&1 &"], check=True)
    time.sleep(1.3)
    after = machine.since(before, busy_limit=0.3)
    assert after["during"]["other_processes_cores"] > 0.3 and "busy machine" in after["busy"]
    quiet = machine.since(machine.snapshot(), busy_limit=1e9)
    assert quiet["busy"] is None


def test_floor_measured_else_labelled_estimate():
    env = {"cpu": {"arch": "x86_64", "isa": ["avx512f"], "max_mhz": 2000.0, "usable_cores": 2}}
    est = floor.floor_for(env, "cpu", "fp32", 1, 1e9, None, 1, 100.0)
    assert est["method"] == "estimate" and est["source"].startswith("estimate")
    measured = {"method": "onnxruntime MLAS", "machine_key": "k", "figures": {"fp32": {"1": 100.0}}}
    m = floor.floor_for(env, "cpu", "fp32", 1, 1e9, None, 1, 50.0, measured=measured)
    assert m["method"] == "measured" and m["peak_gflops"] == 100.0 and m["fraction_of_floor"] == pytest.approx(0.5)
    assert floor.floor_for(env, "cpu", "int8", 1, 1e9, None, 1, 50.0, measured=measured)["method"] == "estimate"
    assert calibrate.not_scaling({"fp32": {"1": 130.0, "2": 120.0}}).startswith("fp32 2 threads")


def test_floor_calibration_measures_and_caches(tmp_path):
    pytest.importorskip("onnxruntime")
    env = {"cpu": {"model": "test", "usable_cores": 1}, "versions": {}, "hostname": "h"}
    first = calibrate.calibrate(env, [1], tmp_path)
    assert first and first["figures"]["fp32"]["1"] > 1 and first["figures"]["int8"]["1"] > 1
    assert "MatMulInteger" in first["method"] and first["cached"] is False
    assert calibrate.calibrate(env, [1], tmp_path)["cached"] is True


def test_calibration_graph_is_valid_onnx():
    onnx = pytest.importorskip("onnx")
    for precision in ("fp32", "int8"):
        onnx.checker.check_model(onnx.load_from_string(calibrate.gemm_model(precision, 64)))


# --- first hour ---------------------------------------------------------------------------------------------

def test_first_hour_missing_run_names_existing_runs(tmp_path):
    (tmp_path / "demo").mkdir()
    (tmp_path / "demo" / "model.keras").write_bytes(b"x")
    msg = artifacts_not_found(tmp_path / "resnet34")
    assert "demo" in msg and "--run demo" in msg
    req = BenchRequest(artifacts=str(tmp_path / "resnet34"), out=str(tmp_path / "r.json"))
    for target in ("local", "x86-cpu"):  # the same message for every launcher
        with pytest.raises(FileNotFoundError) as err:
            get_launcher(target).launch(req)
        assert str(err.value) == msg


def test_first_hour_threads_default_in_progress_lines():
    row = results.new_row("tensorrt", "fp16", None, 1, "latency", latency_ms={"median": 1.0, "p99": 2.0},
                          throughput_ips=1000.0)
    line = rows.describe(row)
    assert "threads=default" in line and "None" not in line


def test_first_hour_container_output_shows_host_paths(tmp_path):
    import io

    buf = io.StringIO()
    HostPaths(buf, {"/results/": "/home/me/results/"}).write("wrote /results/x.json (3 rows)\n")
    assert buf.getvalue() == "wrote /home/me/results/x.json (3 rows)\n"


def test_first_hour_fingerprint_imports_no_framework():
    code = ("import sys; from edgebench.machine import fingerprint; fingerprint.collect(); "
            "print([m for m in ('tensorflow', 'onnxruntime', 'torch', 'tensorrt', 'docker') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env=dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[2] / "src")))
    assert out.stdout.strip() == "[]"
