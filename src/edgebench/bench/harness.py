"""`edgebench bench`: run a suite against an artifacts folder and write one results JSON.

Steps: fingerprint the environment, load the test images once (cached arrays), compute the Keras
reference logits once (cached beside the results), then one child process per group. Rows are
written as they complete; Ctrl-C leaves a valid file with every completed row and "complete": false.
"""
from __future__ import annotations

import json
import multiprocessing as mp
import os
import queue
import time
from pathlib import Path
from typing import Any, Callable, Dict, Optional, Set, Tuple

import numpy as np

from edgebench import data as data_mod
from edgebench import results
from edgebench.bench import fingerprint
from edgebench.bench import suite as suite_mod
from edgebench.bench.runner import GroupRunner
from edgebench.launchers.request import BenchRequest
from edgebench.util import atomic_open, atomic_write_json, path_size, sha256_path



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


def _reference_child(job: Dict[str, Any], q) -> None:
    """Reference logits on the test images (the yardstick of every row), and the model's FLOPs when the
    reference is the Keras model itself."""
    try:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        from edgebench import models, runtimes

        d = np.load(job["data_file"])
        with runtimes.open(job["backend"], job["artifact"]) as rt:
            logits = rt.infer_all(d["x"].astype(np.float32), 256)
            keras_model = getattr(rt, "model", None) if job["backend"].startswith("keras") else None
            complexity = models.count_flops(keras_model) if keras_model is not None else None
            name = keras_model.name if keras_model is not None else None
        np.save(job["out"], logits)
        q.put({"ok": True, "complexity": complexity, "name": name})
    except BaseException as exc:
        q.put({"ok": False, "error": f"{type(exc).__name__}: {exc}"})
        raise


def _reference(backend: str, artifact: Path, data_file: Path, cache: Path) -> Dict[str, Any]:
    meta_file = cache.with_suffix(".json")
    if cache.exists() and meta_file.exists():
        return json.loads(meta_file.read_text())
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    proc = ctx.Process(target=_reference_child, args=({"backend": backend, "artifact": str(artifact),
                                                        "data_file": str(data_file), "out": str(cache)}, q))
    proc.start()
    try:
        msg = q.get(timeout=3600)
    except queue.Empty:
        msg = {"ok": False, "error": "reference run timed out"}
    proc.join()
    if not msg.get("ok"):
        raise RuntimeError(f"reference ({backend} on {artifact}) failed: {msg.get('error')}")
    meta = {"complexity": msg["complexity"], "name": msg["name"], "backend": backend}
    atomic_write_json(meta_file, meta)
    return meta


def _train_metadata(artifacts: Path) -> Dict[str, Any]:
    p = artifacts / "train.json"
    try:
        return json.loads(p.read_text()) if p.exists() else {}
    except ValueError:
        return {}


def _stop_on_sigterm() -> None:
    """`kill` (SIGTERM) stops a sweep like Ctrl-C: completed rows stay, the file says complete: false."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        return

    def handler(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, handler)


def _group_ids(group) -> Set[str]:
    from edgebench.bench.runner import _scenario_batches

    return {results.row_id(group.backend, group.precision, group.threads, b, s)
            for s, cfg in group.scenarios.items() for b in _scenario_batches(s, cfg)}


def _resumable(out: Path, fresh: Dict[str, Any], suite) -> Tuple[Dict[str, Any], Set[Tuple[str, str, Optional[int]]]]:
    """The earlier document with the rows of every group it completed; partial groups are measured again."""
    old = results.load(out)
    if old["model"].get("sha256") != fresh["model"]["sha256"]:
        raise ValueError(f"{out}: was measured on another model (sha256 {str(old['model'].get('sha256'))[:12]}); "
                         f"resume needs the same one, or write to a new --out")
    have = {r["id"] for r in old["rows"]}
    done = {(g.backend, g.precision, g.threads) for g in suite.groups if _group_ids(g) <= have}
    keep_ids = set().union(*[_group_ids(g) for g in suite.groups if (g.backend, g.precision, g.threads) in done]) \
        if done else set()
    old["rows"] = [r for r in old["rows"] if r["id"] in keep_ids]
    old["complete"] = False
    old["suite"] = fresh["suite"]
    old.setdefault("resumed", []).append({"at": fresh["created"], "environment_same": old["environment"].get(
        "cpu") == fresh["environment"].get("cpu") and old["environment"].get("versions") == fresh["environment"].get(
        "versions")})
    return old, done


def run_bench(request: BenchRequest, log: Callable[[str], None] = print) -> Dict[str, Any]:
    """Carry out one bench request in this process's host (each group in its own child process).

    request.reference: the backend whose FP32 logits every row is compared with: the Keras model by default;
    `onnxruntime` (model.onnx, itself checked against Keras at export) where TensorFlow is absent."""
    from edgebench import runtimes

    artifacts_dir, out_path, suite_path = request.artifacts, request.out, request.suite
    device, data_source, test_limit = request.device, request.data, request.test_limit
    only, reference, resume = request.only, request.reference, request.resume
    artifacts = Path(artifacts_dir).resolve()
    if not artifacts.is_dir():
        raise FileNotFoundError(f"{artifacts}: no such artifacts folder (`edgebench train` and `edgebench export` "
                                f"fill it)")
    ref_cls = runtimes.get(reference)
    ref_fmt, ref_prec = ref_cls.artifact_for("fp32")
    model_path = resolve_artifact(artifacts, ref_fmt, ref_prec)
    suite = suite_mod.load(suite_path)
    if only:
        suite.groups = [g for g in suite.groups if g.backend in only]
        if not suite.groups:
            raise ValueError(f"--only {only}: no run of suite {suite.name!r} uses these backends")
    out = Path(out_path).resolve()
    work = out.parent / ".edgebench-cache"
    work.mkdir(parents=True, exist_ok=True)

    env = fingerprint.collect()
    ds = data_mod.load_cifar10(data_source)
    n = test_limit or suite.test_images
    x, y = data_mod.subset(ds.x_test, ds.y_test, n, seed=0)
    model_sha = sha256_path(model_path)
    key = f"{model_sha[:12]}-{ds.checksum[:12]}-{len(x)}"
    data_file = work / f"test-{ds.checksum[:12]}-{len(x)}.npz"
    if not data_file.exists():
        with atomic_open(data_file) as f:
            np.savez(f, x=x, y=y)
    ref_file = work / f"reference-{reference}-{key}.npy"
    log(f"edgebench bench: {len(suite.groups)} groups on {len(x)} test images ({ds.source}); "
        f"reference ({reference}) first")
    ref = _reference(reference, model_path, data_file, ref_file)
    trained = _train_metadata(artifacts)
    complexity = ref["complexity"] or trained.get("complexity") or {}
    model = {"name": ref["name"] or trained.get("model"), "path": str(model_path), "sha256": model_sha,
             "reference_backend": reference, "flops_per_image": complexity.get("flops"),
             "macs_per_image": complexity.get("macs"), "params": complexity.get("params")}
    suite_doc = dict(suite.raw, resolved_threads=suite.threads, test_images=len(x),
                     data={"source": ds.source, "checksum": ds.checksum})
    doc = results.new_document(device, env, model, suite_doc, git_revision=env.get("git_revision"))
    done: Set[Tuple[str, str, Optional[int]]] = set()
    if resume and out.exists():
        doc, done = _resumable(out, doc, suite)
        log(f"resuming {out}: {len(done)} completed groups kept, {len(doc['rows'])} rows")
    writer = results.ResultsWriter(out, doc)
    runner = GroupRunner(writer, suite, env, model, log=log)
    usable = env["cpu"]["usable_cores"] or 1
    job_base = {"data_file": str(data_file), "reference_file": str(ref_file), "pin_threads": suite.pin_threads,
                "overhead_check": suite.overhead_check, "overhead_batch": 64}
    t_start = time.perf_counter()
    _stop_on_sigterm()
    try:
        for i, group in enumerate(suite.groups, 1):
            cls = runtimes.get(group.backend)
            if (group.backend, group.precision, group.threads) in done:
                log(f"[{i}/{len(suite.groups)}] {group.backend} {group.precision} threads={group.threads}: "
                    f"done in the run being resumed")
                continue
            log(f"[{i}/{len(suite.groups)}] {group.backend} {group.precision} threads={group.threads}")
            if group.threads is not None and group.threads > usable:
                runner.skip_rows(group, "skipped", f"this device has {usable} usable cores, fewer than "
                                                   f"threads={group.threads}")
                continue
            fmt, prec = cls.artifact_for(group.precision)
            try:
                art_path = resolve_artifact(artifacts, fmt, prec)
            except (FileNotFoundError, LookupError, ValueError) as exc:  # manifest errors are LookupErrors
                runner.skip_rows(group, "skipped", f"no {fmt} {prec} artifact: {exc}")
                continue
            artifact = {"path": _relative(art_path, artifacts), "size_bytes": path_size(art_path),
                        "sha256": sha256_path(art_path), "format": fmt, "precision": prec}
            runner.run(group, dict(job_base, artifact=str(art_path)), artifact)
    except KeyboardInterrupt:
        writer.flush()
        log(f"\ninterrupted: {len(writer.document['rows'])} completed rows kept in {out} (complete: false)")
        raise
    writer.document["wall_seconds"] = writer.document.get("wall_seconds", 0.0) + time.perf_counter() - t_start
    writer.finish()
    log(f"wrote {out} ({len(writer.document['rows'])} rows, {writer.document['wall_seconds'] / 60:.1f} min)")
    return writer.document
