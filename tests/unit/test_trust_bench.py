"""Trust (issue 13), bench side: each case of the issue's list, run as a user runs `edgebench bench`.

The backends are numpy ones (tests/plugins/edgebench_trust_backends.py), the data a tiny CIFAR-10 folder:
every refusal, exit code and file below is the real harness's, without TensorFlow."""
from __future__ import annotations

import json
import signal
import subprocess
import time

import psutil
import pytest
from trust_rig import bench, bench_argv, env, make_artifacts, make_cifar, write_suite

from edgebench import results
from edgebench.contracts.vocabulary import EXIT_COULD_NOT_RUN, EXIT_OK, EXIT_ROWS_FAILED
from edgebench.util import sha256_file


@pytest.fixture
def rig(tmp_path):
    return {"artifacts": make_artifacts(tmp_path / "artifacts"), "data": make_cifar(tmp_path / "cifar"),
            "suite": write_suite(tmp_path / "quick.yaml"), "out": tmp_path / "results" / "r.json"}


def _run(rig, *more, out=None, suite=None, reference="quick", **kw):
    return bench(rig["artifacts"], out or rig["out"], suite or rig["suite"], rig["data"], *more, reference=reference,
                 **kw)


def _no_traceback(proc):
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]


# --- 1. artifacts are checked against the manifest ----------------------------------------------------------

def test_trust_1_artifact_sha_mismatch_refused(rig):
    model = rig["artifacts"] / "model.keras"
    expected = json.loads((rig["artifacts"] / "manifest.json").read_text())["model"]["sha256"]
    model.write_bytes(b"another model copied over the exported one")
    proc = _run(rig)
    assert proc.returncode == EXIT_COULD_NOT_RUN, proc.stderr
    _no_traceback(proc)
    assert expected in proc.stderr and sha256_file(model) in proc.stderr  # both hashes named
    assert "--allow-unverified" in proc.stderr
    assert not rig["out"].exists()  # refused before anything ran


def test_trust_1_override_rows_say_unverified(rig):
    (rig["artifacts"] / "model.keras").write_bytes(b"changed after export")
    proc = _run(rig, "--allow-unverified")
    assert proc.returncode == EXIT_OK, proc.stderr
    doc = results.load(rig["out"])
    assert doc["unverified"] and doc["model"]["verified"] is False
    assert doc["rows"] and all(any("unverified" in w for w in r["warnings"]) for r in doc["rows"])


# --- 2. --out is never overwritten unless asked; a non-results file never touched ---------------------------

def test_trust_2_existing_results_file_refused_without_force(rig):
    assert _run(rig).returncode == EXIT_OK
    before = rig["out"].read_bytes()
    proc = _run(rig)
    assert proc.returncode == EXIT_COULD_NOT_RUN and "--force" in proc.stderr and "--resume" in proc.stderr
    _no_traceback(proc)
    assert rig["out"].read_bytes() == before
    assert _run(rig, "--force").returncode == EXIT_OK


def test_trust_2_non_results_file_never_touched_even_with_force(rig):
    rig["out"].parent.mkdir(parents=True)
    rig["out"].write_text("my notes, not a results file\n")
    for flags in ((), ("--force",), ("--resume",)):
        proc = _run(rig, *flags)
        assert proc.returncode == EXIT_COULD_NOT_RUN, (flags, proc.stderr)
        assert "not an edgebench results file" in proc.stderr
        _no_traceback(proc)
    assert rig["out"].read_text() == "my notes, not a results file\n"


# --- 5. --resume reruns failed groups and refuses a different request --------------------------------------

def test_trust_5_resume_refuses_a_different_request(rig, tmp_path):
    assert _run(rig, "--test-limit", "32").returncode == EXIT_OK
    before = rig["out"].read_bytes()
    assert json.loads(before)["request"]["test_images"] == 32  # the request is recorded in the document
    proc = _run(rig, "--test-limit", "16", "--resume")
    assert proc.returncode == EXIT_COULD_NOT_RUN and "test images differ" in proc.stderr, proc.stderr
    other = write_suite(tmp_path / "other.yaml", runs=[{"backend": "quick", "threads": [1]}], test_images=16)
    proc = _run(rig, "--test-limit", "32", "--resume", suite=other)
    assert proc.returncode == EXIT_COULD_NOT_RUN and "suite differs" in proc.stderr, proc.stderr
    assert rig["out"].read_bytes() == before


def test_trust_5_resume_reruns_a_killed_group(rig, tmp_path):
    suite = write_suite(tmp_path / "two.yaml", runs=[{"backend": "crash"}, {"backend": "quick"}])
    first = subprocess.run(bench_argv(rig["artifacts"], rig["out"], suite, rig["data"], reference="quick"),
                           env=env(EDGEBENCH_CRASH_AT="6"), capture_output=True, text=True, timeout=180)
    assert first.returncode == EXIT_ROWS_FAILED, first.stderr  # exit code tells "some rows failed" apart
    doc = results.load(rig["out"])
    assert doc["complete"] and {r["status"] for r in doc["rows"] if r["backend"] == "crash"} == {"failed"}
    quick_before = [r for r in doc["rows"] if r["backend"] == "quick"]
    second = subprocess.run(bench_argv(rig["artifacts"], rig["out"], suite, rig["data"], "--resume",
                                       reference="quick"),
                            env=env(EDGEBENCH_CRASH_AT="100000"), capture_output=True, text=True, timeout=180)
    assert second.returncode == EXIT_OK, second.stderr
    doc = results.load(rig["out"])
    assert doc["complete"] and all(r["status"] == "ok" for r in doc["rows"])
    assert [r for r in doc["rows"] if r["backend"] == "quick"] == quick_before  # kept as measured
    assert "done in the run being resumed" in second.stderr


# --- 6. the whole suite is validated first; exit codes ----------------------------------------------------

def test_trust_6_every_suite_problem_listed_before_anything_runs(rig, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("threads: 2\nscenarios:\n  latency: {batch_size: 0}\n  testset: {repeats: 0}\n"
                   "runs:\n  - {backend: quick, precisions: [fp33]}\n  - {backend: quick, threads: [0]}\n")
    proc = _run(rig, suite=bad)
    assert proc.returncode == EXIT_COULD_NOT_RUN
    _no_traceback(proc)
    for where in ("threads: must be", "(write [2])", "scenarios.latency.batch_size", "scenarios.testset.repeats",
                  "runs[0].precisions[0]: unknown precision 'fp33'", "runs[1].threads[0]"):
        assert where in proc.stderr, (where, proc.stderr)
    assert not rig["out"].exists()


def test_trust_6_exit_codes_documented_in_help():
    out = subprocess.run(bench_argv("a", "b", "c", "d")[:4] + ["--help"], capture_output=True, text=True).stdout
    assert f"{EXIT_OK}  every row ok" in out and f"{EXIT_ROWS_FAILED}  the results file" in out
    assert f"{EXIT_COULD_NOT_RUN}  nothing could be measured" in out


# --- 8. a model whose output width is not the number of classes -------------------------------------------

def test_trust_8_wrong_output_width_refused(rig):
    proc = _run(rig, reference="width7")
    assert proc.returncode == EXIT_COULD_NOT_RUN, proc.stderr
    _no_traceback(proc)
    assert "(7,)" in proc.stderr and "10 classes" in proc.stderr


# --- tracebacks where a user needs one line ------------------------------------------------------------------

def test_trust_out_that_is_a_folder_is_one_line(rig):
    rig["out"].mkdir(parents=True)
    proc = _run(rig)
    assert proc.returncode == EXIT_COULD_NOT_RUN and "is a folder" in proc.stderr
    _no_traceback(proc)


def test_trust_sigterm_during_reference_stops_the_reference_child(rig):
    proc = subprocess.Popen(bench_argv(rig["artifacts"], rig["out"], rig["suite"], rig["data"], reference="hang"),
                            env=env(EDGEBENCH_HANG_S="300"), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        me = psutil.Process(proc.pid)
        deadline = time.time() + 60
        kids = []
        while time.time() < deadline and not kids:
            kids = [k for k in me.children(recursive=True) if "spawn" in " ".join(k.cmdline())]
            time.sleep(0.2)
        assert kids, "the reference child never started"
        time.sleep(1.0)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err[-2000:]
    assert "Traceback" not in err and "interrupted by SIGTERM during the reference step" in err, err[-2000:]
    gone = psutil.wait_procs(kids, timeout=10)[1]
    assert not gone, f"reference child left running: {gone}"


# --- first hour: what the terminal says -------------------------------------------------------------------

def test_first_hour_progress_lines_and_framework_log(rig):
    first = _run(rig)
    assert first.returncode == EXIT_OK, first.stderr
    assert "first the reference logits every row is compared with (quick fp32)" in first.stderr
    assert "roughly" in first.stderr
    assert "threads=1" in first.stderr and "threads=None" not in first.stderr
    log = rig["out"].with_suffix(".log")
    assert log.exists() and str(log) in first.stderr.splitlines()[-1]  # the summary names the log
    second = _run(rig, "--force")
    assert "reference logits" not in second.stderr  # cached: no reference step is run


def test_interleaved_rounds_pool_each_rows_samples(rig, tmp_path):
    suite = write_suite(tmp_path / "ab.yaml", runs=[{"backend": "quick"}, {"backend": "quick", "threads": [2]}],
                        interleave=2)
    proc = _run(rig, suite=suite)
    assert proc.returncode == EXIT_OK, proc.stderr
    assert "round 2/2" in proc.stderr
    doc = results.load(rig["out"])
    lat = [r for r in doc["rows"] if r["scenario"] == "latency" and r["status"] == "ok"]
    assert lat and all(len(r["extra"]["rounds"]) == 2 and r["extra"]["rounds_done"] == 2 for r in lat)
    assert all(r["extra"]["machine_load"]["before"] for r in doc["rows"] if r["status"] == "ok")
