"""The benchmark request: what to run, independent of where. Every launcher carries out one of these;
the harness takes it as its input (so it lives here, below both).

`BenchRequest` is the single place that spells `edgebench bench`'s options: each field carries its
option as plain data (`options()`: flag, help, type, default), from which cli/bench.py builds the parser and
tasks.py invoke's help; a request becomes a command line through `to_argv`, and a launcher that moves the run
elsewhere (a container, a device) rewrites only the paths (`with_paths`).
"""
from __future__ import annotations

from dataclasses import MISSING, asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Dict, List, Optional

from edgebench.contracts.errors import RequestError
from edgebench.contracts.vocabulary import REFERENCE_BACKEND


@dataclass(frozen=True)
class Option:
    """One option of `edgebench bench`, as plain data: the CLI parser and invoke's help are built from it."""

    name: str                       # the BenchRequest field
    flag: str                       # --the-flag
    help: str
    type: str = "str"               # str, int, flag (a switch), list (one or more values)
    default: Any = None
    required: bool = False
    metavar: Optional[str] = None


def _opt(help: str, default: Any = None, type: str = "str", required: bool = False,
         metavar: Optional[str] = None) -> Any:
    """A dataclass field whose metadata is its option (flag spelled from the field name)."""
    meta = {"option": {"help": help, "type": type, "required": required, "metavar": metavar}}
    if required:
        return field(metadata=meta)
    return field(default=default, metadata=meta)


@dataclass(frozen=True)
class BenchRequest:
    """One `edgebench bench` invocation. Paths are as seen by whoever carries it out."""

    artifacts: str = _opt("folder with model.keras and the exported formats (manifest.json)", required=True)
    out: str = _opt("results JSON to write (rewritten atomically after every row)", required=True)
    device: str = _opt("name of this device in the results (default: local)", default="local")
    suite: Optional[str] = _opt("suite YAML (default: the kit's default suite)")
    data: Optional[str] = _opt("CIFAR-10 source (default: $EDGEBENCH_DATA, else Keras' download)")
    test_limit: Optional[int] = _opt("use only this many test images (quick runs, tests)", type="int")
    only: Optional[List[str]] = _opt("run only these backends of the suite", type="list", metavar="BACKEND")
    reference: str = _opt("backend whose FP32 logits every row is compared with (default: the Keras model; "
                          "'onnxruntime' where TensorFlow is absent)", default=REFERENCE_BACKEND)
    resume: bool = _opt("continue the results file at --out, started by the same request (suite, test images, "
                        "artifacts, data, reference; a different one is refused): completed groups are kept, "
                        "failed, killed or missing ones are measured again", default=False, type="flag")
    force: bool = _opt("replace an existing edgebench results file at --out (a file that is not one is never "
                       "touched)", default=False, type="flag")
    allow_unverified: bool = _opt("measure artifacts whose sha256 does not match the export manifest (refused "
                                  "otherwise); every row then says it is unverified", default=False, type="flag")
    extra: Dict[str, Any] = field(default_factory=dict)  # launcher-specific settings, never on the command line

    def __post_init__(self) -> None:
        if not self.artifacts:
            raise RequestError("a bench request needs an artifacts folder")
        if not self.out:
            raise RequestError("a bench request needs an --out results file")
        if self.test_limit is not None and int(self.test_limit) < 1:
            raise RequestError(f"--test-limit must be a positive number of images, not {self.test_limit}")
        if self.resume and self.force:
            raise RequestError("--resume continues the file at --out and --force replaces it: choose one")

    def with_paths(self, **paths: Optional[str]) -> "BenchRequest":
        """The same request with some paths replaced (artifacts, out, suite, data)."""
        unknown = set(paths) - {"artifacts", "out", "suite", "data"}
        if unknown:
            raise RequestError(f"not path fields of a bench request: {sorted(unknown)}")
        return replace(self, **paths)

    def to_argv(self) -> List[str]:
        """The `edgebench bench ...` arguments (without the program name) that carry out this request."""
        argv = ["bench"]
        for o in options():
            value = getattr(self, o.name)
            if not o.required and (value is None or value == o.default):
                continue
            if o.type == "flag":
                argv.append(o.flag)
            elif o.type == "list":
                argv += [o.flag, *[str(v) for v in value]]
            else:
                argv += [o.flag, str(value)]
        return argv

    def to_dict(self) -> Dict[str, Any]:
        return asdict(self)


def options() -> List[Option]:
    """`edgebench bench`'s options, one per BenchRequest field but `extra` (in field order)."""
    out = []
    for f in fields(BenchRequest):
        meta = f.metadata.get("option")
        if meta is None:
            continue
        default = None if f.default is MISSING else f.default
        out.append(Option(name=f.name, flag="--" + f.name.replace("_", "-"), default=default, **meta))
    return out


def artifacts_not_found(artifacts: Path) -> str:
    """The message for a missing artifacts folder: which runs exist beside it and the flags that pick one."""
    parent = artifacts.parent
    runs = sorted(p.name for p in parent.iterdir() if p.is_dir() and (p / "model.keras").exists()) \
        if parent.is_dir() else []
    msg = f"artifacts folder not found: {artifacts}"
    if runs:
        pick = runs[0]
        msg += (f". Runs in {parent}: {', '.join(runs)}; pick one with `invoke bench --run {pick}` "
                f"(or `edgebench bench --artifacts {parent / pick}`)")
    else:
        msg += (f". No trained runs in {parent} (a run is a folder with model.keras): `invoke train` and "
                f"`invoke export` make one, `make demo` makes artifacts/demo")
    return msg
