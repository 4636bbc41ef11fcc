"""The crash-safe child-process transport: one spawned process per unit of work, messages back over a pipe.

Why child processes: thread settings of TensorFlow and ONNX Runtime only take effect before the framework
starts, CPU pinning is per process, and a backend that crashes (a segfault in a native library) must not take
the harness, or the rows already measured, down with it. The child:
- dies with the harness (PR_SET_PDEATHSIG), so no orphan keeps a core busy;
- writes the frameworks' chatter (TensorFlow INFO lines, absl, ONNX Runtime warnings) to a log file, not the
  terminal (its stdout and stderr file descriptors point at the log);
- sends each message synchronously, so one sent before a crash is never lost.
The parent reads messages until "done", an "error", the child's death (EOF) or a timeout; any exception in the
parent (Ctrl-C, SIGTERM) kills the child before it propagates.
"""
from __future__ import annotations

import multiprocessing as mp
import os
import sys
import time
import traceback
from typing import Any, Callable, Dict, Iterator, List, Optional

from edgebench.runtimes.base import RuntimeUnavailable
from edgebench.util import tf_log_level


def die_with_parent() -> None:
    """Linux: the kernel sends this process SIGKILL when the harness dies."""
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, 9)  # PR_SET_PDEATHSIG, SIGKILL
        except (OSError, AttributeError):
            pass


def set_thread_env(threads: Optional[int]) -> None:
    """Before any framework import: OpenMP / MKL / Eigen pools read these at start-up."""
    if threads is not None:
        for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "TF_NUM_INTRAOP_THREADS"):
            os.environ[var] = str(threads)
        os.environ["TF_NUM_INTEROP_THREADS"] = "1"


def pin(threads: Optional[int]) -> Optional[List[int]]:
    """Restrict this process to the first `threads` usable cores; the cores, or None when not pinned."""
    if threads is None or not hasattr(os, "sched_setaffinity"):
        return None
    cores = sorted(os.sched_getaffinity(0))[:threads]
    os.sched_setaffinity(0, cores)
    return cores


def quiet(log_file: Optional[str]) -> None:
    """Send this process's stdout/stderr (file descriptors, so native libraries' output too) to `log_file`."""
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = tf_log_level()
    if not log_file:
        return
    try:
        fd = os.open(log_file, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    except OSError:
        return  # an unwritable log must not stop the measurement
    sys.stdout.flush()
    sys.stderr.flush()
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)


def _entry(target: Callable[[Dict[str, Any], Callable[..., None]], None], job: Dict[str, Any], conn) -> None:
    die_with_parent()
    quiet(job.get("log_file"))

    def send(kind: str, **payload: Any) -> None:
        conn.send(dict(payload, kind=kind))  # synchronous: a crash right after cannot lose it

    try:
        target(job, send)
        send("done")
    except BaseException as exc:  # report, then die: the parent turns it into failed rows or a refusal
        skipped = isinstance(exc, RuntimeUnavailable)   # a backend this machine lacks: a skip, not a failure
        conn.send({"kind": "error", "skipped": skipped, "error": f"{type(exc).__name__}: {exc}",
                   "traceback": traceback.format_exc()[-4000:]})
        sys.exit(1)


class Child:
    """One spawned child running `target(job, send)`; iterate `messages()` in the parent."""

    def __init__(self, target: Callable, job: Dict[str, Any], name: str = "edgebench-child",
                 timeout_s: float = 3600.0):
        ctx = mp.get_context("spawn")
        self._reader, writer = ctx.Pipe(duplex=False)
        self.proc = ctx.Process(target=_entry, args=(target, job, writer), name=name)
        self.timeout_s = timeout_s
        self.error: Optional[Dict[str, Any]] = None
        self.proc.start()
        writer.close()  # the child holds the only writer: its death ends the stream (EOFError)

    def __enter__(self) -> "Child":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None:  # Ctrl-C, SIGTERM or a harness error while handling a message
            self.kill()

    def messages(self) -> Iterator[Dict[str, Any]]:
        """Messages until "done"; an "error" message or a timeout ends the stream and is kept in `.error`.
        Any exception while the caller handles a message (Ctrl-C, SIGTERM) kills the child first."""
        deadline = time.monotonic() + self.timeout_s
        try:
            while True:
                if not self._reader.poll(1.0):
                    if time.monotonic() > deadline:
                        self.error = {"error": f"timed out after {self.timeout_s:.0f} s", "skipped": False}
                        return
                    continue
                try:
                    msg = self._reader.recv()
                except EOFError:  # the child is gone; what it sent before is already handled
                    return
                if msg["kind"] == "done":
                    return
                if msg["kind"] == "error":
                    self.error = msg
                    return
                yield msg
        except BaseException:
            self.kill()
            raise
        finally:
            self.finish()

    def finish(self, grace_s: float = 30.0) -> None:
        self.proc.join(timeout=grace_s)
        if self.proc.is_alive():
            self.kill()

    def kill(self) -> None:
        if self.proc.is_alive():
            self.proc.kill()
        self.proc.join()

    def death(self) -> Optional[str]:
        """How the child ended when it ended badly ("signal 11", "exit 1"), else None."""
        code = self.proc.exitcode
        if code in (0, None):
            return None
        return f"signal {-code}" if code < 0 else f"exit {code}"
