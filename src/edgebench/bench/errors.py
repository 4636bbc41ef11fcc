"""The harness's own refusals: each says what was refused, where (a path, a key) and why."""
from __future__ import annotations

import errno
import shutil
from pathlib import Path
from typing import Optional, Union

from edgebench.errors import EdgebenchError


class BenchError(EdgebenchError, RuntimeError):
    """`edgebench bench` could not run (or was refused): the message names the path and the cause.
    The CLI maps it to EXIT_COULD_NOT_RUN and prints the message, never a traceback."""


class BenchInputError(BenchError, ValueError):
    """A value the harness refuses (a stop rule, a model's output shape, no measurements): a ValueError too."""


class UnknownScenarioError(BenchError, KeyError):
    """A scenario name the harness does not know: a KeyError too, as a lookup of the scenario table."""


class BenchInterrupted(KeyboardInterrupt):
    """Ctrl-C or SIGTERM stopped a sweep after the harness said what it kept and how to resume: callers
    (invoke's bench task) exit 130 without saying it again."""
    reported = True


def free_bytes(path: Union[str, Path]) -> Optional[int]:
    p = Path(path)
    while not p.exists() and p != p.parent:
        p = p.parent
    try:
        return shutil.disk_usage(str(p)).free
    except OSError:
        return None


def _mb(n: Optional[int]) -> str:
    """A size in the unit that shows it (a 3 kB results file is not '0.0 MB')."""
    if n is None:
        return "?"
    if n < 10_000:
        return f"{n} bytes"
    if n < 100 * 2**10:
        return f"{n / 2**10:.0f} kB"
    return f"{n / 2**20:.1f} MB"


def write_error(path: Union[str, Path], exc: OSError, needed: Optional[int] = None, what: str = "write",
                after: str = "") -> BenchError:
    """A clear error for an OSError while writing `path`: disk full (how much was needed, how much is free),
    read-only or permission denied, a folder where a file was expected."""
    p = Path(path)
    if exc.errno == errno.ENOSPC:
        need = f"needed about {_mb(needed)}, " if needed else ""
        reason = f"disk full: could not {what} {p} ({need}{_mb(free_bytes(p.parent))} free on {p.parent})"
    elif exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        reason = f"cannot {what} {p}: {p.parent} is not writable ({exc.strerror})"
    elif exc.errno == errno.EISDIR or p.is_dir():
        reason = f"cannot {what} {p}: it is a folder (give a file name, e.g. {p / 'results.json'})"
    else:
        reason = f"cannot {what} {p}: {exc.strerror or exc}"
    return BenchError(reason + (f"; {after}" if after else ""))

