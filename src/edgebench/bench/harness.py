"""`edgebench bench`: run a suite against an artifacts folder and write one results JSON.

Order: refuse what would be wrong or destructive before anything runs (the --out file, the whole suite, every
artifact's sha256 against the export manifest), load the test split once (cached arrays), compute the
reference logits once (cached beside the results; the model's output width checked), measure the machine's
peak once per machine (bench.calibrate), then one child process per group, in rounds when the suite asks for
interleaved repeats. Rows are written as they complete; Ctrl-C or SIGTERM leaves a valid file with every
completed row and "complete": false. Frameworks' chatter goes to <out>.log, not the terminal.
"""
from __future__ import annotations

import errno
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Set, Tuple

import numpy as np

from edgebench import data as data_mod
from edgebench import results
from edgebench.bench import progress, reference, resume, rows
from edgebench.bench import suite as suite_mod
from edgebench.bench.checks import UNVERIFIED, Provenance, check_out
from edgebench.bench.errors import BenchError, BenchInterrupted, free_bytes, write_error
from edgebench.bench.rounds import RoundSink, share_out
from edgebench.bench.runner import GroupRunner
from edgebench.contracts.request import BenchRequest, artifacts_not_found
from edgebench.contracts.vocabulary import CACHE_DIRNAME, ENGINE_CACHE_ENV, RESOLVED_THREADS_KEY
from edgebench.machine import fingerprint
from edgebench.util import atomic_open, path_size


def resolve_artifact(artifacts: Path, fmt: str, precision: str) -> Path:
    """Path of the exported artifact of `fmt` at `precision` (the export manifest decides)."""
    if fmt == "keras":
        p = artifacts / "model.keras"
        if not p.exists():
            raise FileNotFoundError(f"{p} does not exist")
        return p
    from edgebench.export import manifest

    return Path(manifest.resolve(artifacts, fmt, precision))


def _relative(path: Path, root: Path) -> str:
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)


def _train_metadata(artifacts: Path) -> Dict[str, Any]:
    p = artifacts / "train.json"
    try:
        return json.loads(p.read_text()) if p.exists() else {}
    except (OSError, ValueError):
        return {}


def _stop_on_sigterm() -> None:
    """`kill` (SIGTERM) stops a sweep like Ctrl-C: children are killed, completed rows stay (complete: false)."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        return

    def handler(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, handler)


def save_test_arrays(path: Path, x: np.ndarray, y: np.ndarray) -> None:
    """The test images the children read, written once (atomically); a full disk is a clear BenchError."""
    if path.exists():
        return
    needed = x.nbytes + y.nbytes + 4096
    free = free_bytes(path.parent)
    try:
        if free is not None and free < needed:  # say so before writing half a file
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        with atomic_open(path) as f:
            np.savez(f, x=x, y=y)
    except OSError as exc:
        raise write_error(path, exc, needed=needed, what="write the test arrays to") from None


class _Plan:
    """Per group: skip reason, or the artifact to run (path and record), decided before anything runs."""

    def __init__(self, artifacts: Path, provenance: Provenance, usable: int):
        from edgebench import runtimes

        self.runtimes = runtimes
        self.artifacts, self.provenance, self.usable = artifacts, provenance, usable
        self.hashes: Dict[str, str] = {}

    def decide(self, group) -> Tuple[Optional[str], Optional[Path], Optional[Dict[str, Any]]]:
        if group.threads is not None and group.threads > self.usable:
            return (f"this device has {self.usable} usable cores, fewer than threads={group.threads}", None, None)
        fmt, prec = self.runtimes.get(group.backend).artifact_for(group.precision)
        try:
            path = resolve_artifact(self.artifacts, fmt, prec)
        except (FileNotFoundError, LookupError, ValueError) as exc:  # manifest errors are LookupErrors
            return (f"no {fmt} {prec} artifact: {exc}", None, None)
        rel = _relative(path, self.artifacts)
        if rel not in self.hashes:
            self.hashes[rel] = self.provenance.verify(fmt, prec, path)["sha256"]
        return (None, path, {"path": rel, "size_bytes": path_size(path), "sha256": self.hashes[rel], "format": fmt,
                             "precision": prec, "verified": not self.provenance.notes})


@dataclass
class _Run:
    """What the steps of one bench run hand each other (no process-wide state: the engine cache is passed)."""

    request: BenchRequest
    log: Callable[[str], None]
    artifacts: Path
    out: Path
    suite: Any
    model_path: Path = Path()
    provenance: Any = None
    model_check: Dict[str, Any] = field(default_factory=dict)
    work: Path = Path()
    engine_cache: str = ""
    log_file: Path = Path()
    env: Dict[str, Any] = field(default_factory=dict)
    plan: Any = None
    decisions: List[Any] = field(default_factory=list)
    ds: Any = None
    n_images: int = 0
    data_file: Path = Path()
    ref_file: Path = Path()
    record: Dict[str, Any] = field(default_factory=dict)
    done: Set[Tuple[str, str, Optional[int]]] = field(default_factory=set)
    old_doc: Optional[Dict[str, Any]] = None


def run_bench(request: BenchRequest, log: Callable[[str], None] = print) -> Dict[str, Any]:
    """Carry out one bench request on this host (each group in its own child process).

    request.reference: the backend whose FP32 logits every row is compared with: the Keras model by default;
    `onnxruntime` (model.onnx, itself checked against Keras at export) where TensorFlow is absent."""
    _stop_on_sigterm()  # from the start: the reference step and the calibration stop like the groups
    run = _checked_request(request, log)
    _reference_model(run)
    _work_dir(run)
    _plan_and_data(run)
    _resume_state(run)
    prog = _progress(run)
    ref, floors = _reference_and_floors(run, prog)
    writer, runner = _writer_and_runner(run, ref, floors)
    return _sweep(run, prog, writer, runner)


def _checked_request(request: BenchRequest, log: Callable[[str], None]) -> _Run:
    """The artifacts folder, --out and the suite (with --only applied), refused before anything runs."""
    artifacts = Path(request.artifacts).resolve()
    if not artifacts.is_dir():
        raise BenchError(artifacts_not_found(Path(request.artifacts)))
    out = Path(request.out).resolve()
    check_out(out, force=request.force, resume=request.resume)
    suite = suite_mod.load(request.suite)
    if request.only:
        suite.groups = [g for g in suite.groups if g.backend in request.only]
        if not suite.groups:
            raise BenchError(f"--only {' '.join(request.only)}: no run of suite {suite.name!r} uses these backends")
    return _Run(request=request, log=log, artifacts=artifacts, out=out, suite=suite)


def _reference_model(run: _Run) -> None:
    """The reference backend's FP32 artifact, resolved through the manifest and its sha256 checked."""
    from edgebench import runtimes

    request = run.request
    try:
        ref_fmt, _ = runtimes.get(request.reference).artifact_for("fp32")
    except KeyError as exc:
        raise BenchError(f"--reference: {exc.args[0]}") from None
    try:
        run.model_path = resolve_artifact(run.artifacts, ref_fmt, "fp32")
    except (FileNotFoundError, LookupError) as exc:
        raise BenchError(f"reference ({request.reference}): {exc}") from None
    run.provenance = Provenance(run.artifacts, allow_unverified=request.allow_unverified)
    run.model_check = run.provenance.verify(ref_fmt, "fp32", run.model_path)


def _work_dir(run: _Run) -> None:
    """The writable cache beside the results; TensorRT engines are built once per (model, GPU, TensorRT) and
    kept there (in a container: the results mount), never beside the read-only artifacts. The engine cache
    is handed to each group explicitly ($EDGEBENCH_ENGINE_CACHE, when set, wins); os.environ is not touched."""
    run.work = run.out.parent / CACHE_DIRNAME
    try:
        run.work.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise write_error(run.work, exc, what="create the cache folder") from None
    run.engine_cache = os.environ.get(ENGINE_CACHE_ENV) or str(run.work / "engines")
    run.log_file = run.out.with_suffix(".log")


def _plan_and_data(run: _Run) -> None:
    """The fingerprint, every group's artifact decided (and checked) and the test images saved for the groups."""
    run.env = fingerprint.collect()
    run.plan = _Plan(run.artifacts, run.provenance, run.env["cpu"]["usable_cores"] or 1)
    run.decisions = [run.plan.decide(g) for g in run.suite.groups]  # every artifact checked before anything runs
    run.ds = data_mod.load_cifar10_test(run.request.data)
    x, y = data_mod.subset(run.ds.x_test, run.ds.y_test, run.request.test_limit or run.suite.test_images, seed=0)
    run.n_images = len(x)
    key = f"{run.model_check['sha256'][:12]}-{run.ds.checksum[:12]}-{len(x)}"
    run.data_file = run.work / f"test-{run.ds.checksum[:12]}-{len(x)}.npz"
    save_test_arrays(run.data_file, x, y)
    run.ref_file = run.work / f"reference-{run.request.reference}-{key}.npy"


def _resume_state(run: _Run) -> None:
    """The request record; with --resume, the groups the file at --out completed; else a fresh framework log."""
    request, out = run.request, run.out
    hashes = dict(run.plan.hashes, **{_relative(run.model_path, run.artifacts): run.model_check["sha256"]})
    run.record = resume.request_record(run.suite, run.n_images, hashes, run.ds.checksum, request.reference,
                                       request.only)
    if request.resume and out.exists():
        run.old_doc, run.done = resume.resumable(out, {"request": run.record, "environment": run.env,
                                                       "created": _now()}, run.suite.groups, run.suite.interleave)
        return
    try:
        run.log_file.write_text("")
    except OSError as exc:
        raise write_error(run.log_file, exc, what="write the framework log") from None


def _progress(run: _Run):
    suite, request = run.suite, run.request
    rounds = suite.interleave
    skip = [d[0] is not None or g.key in run.done for g, d in zip(suite.groups, run.decisions)]
    prog = progress.Progress(suite.groups, run.n_images, skip)
    ref_cached = run.ref_file.exists() and run.ref_file.with_suffix(".json").exists()
    first = "" if ref_cached else f"; first the reference logits every row is compared with ({request.reference} fp32)"
    run.log(f"edgebench bench: suite {suite.name!r}, {len(suite.groups)} groups on {run.n_images} test images "
            f"({run.ds.source}){f', {rounds} interleaved rounds' if rounds > 1 else ''}; roughly "
            f"{progress.human(prog.total())} (estimate){first}")
    run.log(f"framework messages (TensorFlow, ONNX Runtime) go to {run.log_file}")
    return prog


def _reference_and_floors(run: _Run, prog) -> Tuple[Dict[str, Any], Any]:
    """The reference logits (the estimate then calibrated on this machine) and the peak calibration."""
    request, usable = run.request, run.plan.usable
    ref = _before_rows(f"the reference step ({request.reference} fp32 logits)", run.out, run.log,
                       lambda: reference.compute(request.reference, run.model_path, run.data_file, run.ref_file,
                                                 log_file=run.log_file))
    speed = progress.calibrated(ref.get("timing"), usable)
    if speed is not None and prog.total() > 0:  # this machine's pace replaces the assumed one
        prog.recalibrate(speed)
        run.log(f"estimate calibrated on this machine ({request.reference} fp32 {speed.ips:.0f} img/s on {usable} "
                f"cores, {speed.load_s:.0f} s to start a group): roughly {progress.human(prog.total())}")
    floors = _before_rows("the peak calibration", run.out, run.log,
                          lambda: _calibrate(run.env, run.suite, run.decisions, run.work, run.log))
    if floors:
        run.env["floor_calibration"] = floors
    return ref, floors


def _writer_and_runner(run: _Run, ref: Dict[str, Any], floors: Any):
    """The results document (new, or the one being resumed), its writer and the group runner."""
    request, model_sha = run.request, run.model_check["sha256"]
    trained = _train_metadata(run.artifacts)
    complexity = ref["complexity"] or trained.get("complexity") or {}
    model = {"name": ref["name"] or trained.get("model"), "path": str(run.model_path), "sha256": model_sha,
             "manifest_sha256": run.model_check["manifest_sha256"], "verified": run.model_check["verified"],
             "reference_backend": request.reference, "flops_per_image": complexity.get("flops"),
             "macs_per_image": complexity.get("macs"), "params": complexity.get("params")}
    suite_doc = dict(run.suite.raw, **{RESOLVED_THREADS_KEY: run.suite.threads}, test_images=run.n_images,
                     data={"source": run.ds.source, "checksum": run.ds.checksum})
    doc = results.new_document(request.device, run.env, model, suite_doc, git_revision=run.env.get("git_revision"))
    doc["request"] = run.record
    doc["framework_log"] = str(run.log_file)
    if run.provenance.notes:
        doc["unverified"] = list(run.provenance.notes)
    if run.old_doc is not None:
        doc = run.old_doc
        run.log(f"resuming {run.out}: {len(run.done)} completed groups kept, {len(doc['rows'])} rows; failed or "
                f"missing groups are measured again")
    writer = _writer(run.out, doc)
    builder = rows.RowBuilder(run.env, model, floors=floors, marks=[UNVERIFIED] if run.provenance.notes else [])
    return writer, GroupRunner(writer, builder, log=run.log)


def _sweep(run: _Run, prog, writer, runner) -> Dict[str, Any]:
    """Every group, round by round (rows written as they complete); Ctrl-C keeps what is done."""
    suite, out, log, rounds = run.suite, run.out, run.log, run.suite.interleave
    job_base = {"data_file": str(run.data_file), "reference_file": str(run.ref_file),
                "pin_threads": suite.pin_threads, "overhead_check": suite.overhead_check, "overhead_batch": 64,
                "log_file": str(run.log_file), "engine_cache": run.engine_cache}
    t_start = time.perf_counter()
    try:
        for r in range(1, rounds + 1):
            for i, (group, (why, art_path, artifact)) in enumerate(zip(suite.groups, run.decisions)):
                head = (f"[{i + 1}/{len(suite.groups)}{f' round {r}/{rounds}' if rounds > 1 else ''}] "
                        f"{group.backend} {group.precision} threads={rows.threads_label(group.threads)}")
                if group.key in run.done:
                    log(f"{head}: done in the run being resumed")
                    continue
                if why is not None:
                    if r == 1:
                        log(f"{head}: skipped: {why}")
                        runner.skip_rows(group, "skipped", why)
                    continue
                left = prog.left() if r == 1 else None
                log(head + (f" (about {progress.human(left)} left)" if left and prog.done else ""))
                prog.start(i)
                sink = writer if r == 1 else RoundSink(writer, r)
                measured = runner.run(share_out(group, rounds), dict(job_base, artifact=str(art_path)), artifact,
                                      sink=sink)
                prog.finish(i, measured=bool(measured))
    except KeyboardInterrupt:
        _flush_quietly(writer)
        log(f"\ninterrupted: {len(writer.document['rows'])} completed rows kept in {out} (complete: false); "
            f"continue with --resume")
        raise BenchInterrupted(str(out)) from None
    except OSError as exc:
        raise _results_error(out, writer.document, exc) from None
    return _finish(run, writer, t_start)


def _finish(run: _Run, writer, t_start: float) -> Dict[str, Any]:
    writer.document["wall_seconds"] = writer.document.get("wall_seconds", 0.0) + time.perf_counter() - t_start
    try:
        writer.finish()
    except OSError as exc:
        raise _results_error(run.out, writer.document, exc) from None
    doc = writer.document
    failed = sum(1 for r in doc["rows"] if r.get("status") == "failed")
    busy = sum(1 for r in doc["rows"] if (r.get("extra") or {}).get("machine_load", {}).get("busy"))
    run.log(f"wrote {run.out} ({len(doc['rows'])} rows{f', {failed} failed' if failed else ''}"
            f"{f', {busy} measured on a busy machine' if busy else ''}, {doc['wall_seconds'] / 60:.1f} min); "
            f"framework log: {run.log_file}")
    return doc


def _before_rows(step: str, out: Path, log, fn):
    """fn(); a Ctrl-C or SIGTERM during it says what was interrupted and what is left (no row measured yet)."""
    import signal

    try:
        return fn()
    except BenchInterrupted:
        raise
    except KeyboardInterrupt as exc:
        how = "SIGTERM" if str(exc) == f"signal {int(signal.SIGTERM)}" else "Ctrl-C"
        left = "left as it was" if out.exists() else "not written"
        log(f"\ninterrupted by {how} during {step}: no row was measured, {out} {left}; run the same command "
            f"again (the reference logits are cached only once complete)")
        raise BenchInterrupted(str(out)) from None


def _calibrate(env, suite, decisions, work: Path, log) -> Optional[Dict[str, Any]]:
    from edgebench import runtimes
    from edgebench.bench.calibrate import calibrate

    threads = sorted({g.threads or env["cpu"]["usable_cores"] or 1 for g, d in zip(suite.groups, decisions)
                      if d[0] is None and runtimes.get(g.backend).device == "cpu"})
    if not threads:
        return None
    try:
        return calibrate(env, threads, data_mod.cache_dir(), log=log)
    except KeyboardInterrupt:
        raise
    except Exception as exc:  # the floor falls back to the labelled estimate
        log(f"peak calibration failed ({type(exc).__name__}: {exc}); floors use the labelled estimate")
        return None


def _results_error(out: Path, doc: Dict[str, Any], exc: OSError) -> BenchError:
    return write_error(out, exc, needed=len(json.dumps(doc, indent=2, default=str)) + 1,
                       what="write the results to", after="the file keeps the rows written before it")


def _writer(out: Path, doc: Dict[str, Any]) -> results.ResultsWriter:
    try:
        return results.ResultsWriter(out, doc)
    except OSError as exc:
        raise _results_error(out, doc, exc) from None


def _flush_quietly(writer) -> None:
    try:
        writer.flush()
    except OSError:
        pass  # the file on disk is the last complete write


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
