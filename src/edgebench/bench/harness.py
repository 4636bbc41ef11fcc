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
from pathlib import Path
from typing import Any, Callable, Dict, Optional, Set, Tuple

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


def run_bench(request: BenchRequest, log: Callable[[str], None] = print) -> Dict[str, Any]:
    """Carry out one bench request on this host (each group in its own child process).

    request.reference: the backend whose FP32 logits every row is compared with: the Keras model by default;
    `onnxruntime` (model.onnx, itself checked against Keras at export) where TensorFlow is absent."""
    from edgebench import runtimes

    _stop_on_sigterm()  # from the start: the reference step and the calibration stop like the groups
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
    try:
        ref_fmt, _ = runtimes.get(request.reference).artifact_for("fp32")
    except KeyError as exc:
        raise BenchError(f"--reference: {exc.args[0]}") from None
    try:
        model_path = resolve_artifact(artifacts, ref_fmt, "fp32")
    except (FileNotFoundError, LookupError) as exc:
        raise BenchError(f"reference ({request.reference}): {exc}") from None
    provenance = Provenance(artifacts, allow_unverified=request.allow_unverified)
    model_check = provenance.verify(ref_fmt, "fp32", model_path)
    work = out.parent / CACHE_DIRNAME
    try:
        work.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise write_error(work, exc, what="create the cache folder") from None
    # TensorRT engines are built once per (model, GPU, TensorRT) and kept in a writable place: beside the
    # results (in a container: the results mount), never beside the read-only artifacts
    os.environ.setdefault(ENGINE_CACHE_ENV, str(work / "engines"))
    log_file = out.with_suffix(".log")

    env = fingerprint.collect()
    usable = env["cpu"]["usable_cores"] or 1
    plan = _Plan(artifacts, provenance, usable)
    decisions = [plan.decide(g) for g in suite.groups]  # every artifact checked before anything runs
    ds = data_mod.load_cifar10_test(request.data)
    n = request.test_limit or suite.test_images
    x, y = data_mod.subset(ds.x_test, ds.y_test, n, seed=0)
    model_sha = model_check["sha256"]
    key = f"{model_sha[:12]}-{ds.checksum[:12]}-{len(x)}"
    data_file = work / f"test-{ds.checksum[:12]}-{len(x)}.npz"
    save_test_arrays(data_file, x, y)
    ref_file = work / f"reference-{request.reference}-{key}.npy"

    record = resume.request_record(suite, len(x), dict(plan.hashes, **{_relative(model_path, artifacts): model_sha}),
                                   ds.checksum, request.reference, request.only)
    doc_probe = {"request": record}
    done: Set[Tuple[str, str, Optional[int]]] = set()
    old_doc = None
    if request.resume and out.exists():
        old_doc, done = resume.resumable(out, dict(doc_probe, environment=env, created=_now()), suite.groups,
                                         suite.interleave)
    if not (request.resume and out.exists()):
        try:
            log_file.write_text("")
        except OSError as exc:
            raise write_error(log_file, exc, what="write the framework log") from None

    rounds = suite.interleave
    skip = [d[0] is not None or g.key in done for g, d in zip(suite.groups, decisions)]
    prog = progress.Progress(suite.groups, len(x), skip)
    ref_cached = ref_file.exists() and ref_file.with_suffix(".json").exists()
    log(f"edgebench bench: suite {suite.name!r}, {len(suite.groups)} groups on {len(x)} test images ({ds.source})"
        f"{f', {rounds} interleaved rounds' if rounds > 1 else ''}; roughly {progress.human(prog.total())} "
        f"(estimate){'' if ref_cached else f'; first the reference logits every row is compared with ({request.reference} fp32)'}")
    log(f"framework messages (TensorFlow, ONNX Runtime) go to {log_file}")
    ref = _before_rows(f"the reference step ({request.reference} fp32 logits)", out, log,
                       lambda: reference.compute(request.reference, model_path, data_file, ref_file,
                                                 log_file=log_file))
    speed = progress.calibrated(ref.get("timing"), usable)
    if speed is not None and prog.total() > 0:  # this machine's pace replaces the assumed one
        prog.recalibrate(speed)
        log(f"estimate calibrated on this machine ({request.reference} fp32 {speed.ips:.0f} img/s on {usable} "
            f"cores, {speed.load_s:.0f} s to start a group): roughly {progress.human(prog.total())}")
    floors = _before_rows("the peak calibration", out, log, lambda: _calibrate(env, suite, decisions, work, log))
    if floors:
        env["floor_calibration"] = floors
    trained = _train_metadata(artifacts)
    complexity = ref["complexity"] or trained.get("complexity") or {}
    model = {"name": ref["name"] or trained.get("model"), "path": str(model_path), "sha256": model_sha,
             "manifest_sha256": model_check["manifest_sha256"], "verified": model_check["verified"],
             "reference_backend": request.reference, "flops_per_image": complexity.get("flops"),
             "macs_per_image": complexity.get("macs"), "params": complexity.get("params")}
    suite_doc = dict(suite.raw, **{RESOLVED_THREADS_KEY: suite.threads}, test_images=len(x),
                     data={"source": ds.source, "checksum": ds.checksum})
    doc = results.new_document(request.device, env, model, suite_doc, git_revision=env.get("git_revision"))
    doc["request"] = record
    doc["framework_log"] = str(log_file)
    if provenance.notes:
        doc["unverified"] = list(provenance.notes)
    if old_doc is not None:
        doc = old_doc
        log(f"resuming {out}: {len(done)} completed groups kept, {len(doc['rows'])} rows; failed or missing "
            f"groups are measured again")
    marks = [UNVERIFIED] if provenance.notes else []
    writer = _writer(out, doc)
    builder = rows.RowBuilder(env, model, floors=floors, marks=marks)
    runner = GroupRunner(writer, builder, log=log)
    job_base = {"data_file": str(data_file), "reference_file": str(ref_file), "pin_threads": suite.pin_threads,
                "overhead_check": suite.overhead_check, "overhead_batch": 64, "log_file": str(log_file)}
    t_start = time.perf_counter()
    try:
        for r in range(1, rounds + 1):
            for i, (group, (why, art_path, artifact)) in enumerate(zip(suite.groups, decisions)):
                head = (f"[{i + 1}/{len(suite.groups)}{f' round {r}/{rounds}' if rounds > 1 else ''}] "
                        f"{group.backend} {group.precision} threads={rows.threads_label(group.threads)}")
                if group.key in done:
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
    writer.document["wall_seconds"] = writer.document.get("wall_seconds", 0.0) + time.perf_counter() - t_start
    try:
        writer.finish()
    except OSError as exc:
        raise _results_error(out, writer.document, exc) from None
    doc = writer.document
    failed = sum(1 for r in doc["rows"] if r.get("status") == "failed")
    busy = sum(1 for r in doc["rows"] if (r.get("extra") or {}).get("machine_load", {}).get("busy"))
    log(f"wrote {out} ({len(doc['rows'])} rows{f', {failed} failed' if failed else ''}"
        f"{f', {busy} measured on a busy machine' if busy else ''}, {doc['wall_seconds'] / 60:.1f} min); "
        f"framework log: {log_file}")
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
