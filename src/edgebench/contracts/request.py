"""The benchmark request: what to run, independent of where. Every launcher carries out one of these;
the harness takes it as its input (so it lives here, below both).

`BenchRequest` is the single place that spells `edgebench bench`'s options: the CLI parser is built from
`add_arguments`, a request becomes a command line through `to_argv`, and a launcher that moves the run
elsewhere (a container, a device) rewrites only the paths (`with_paths`).
"""
from __future__ import annotations

import argparse
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Dict, List, Optional

from edgebench.contracts.vocabulary import REFERENCE_BACKEND


@dataclass(frozen=True)
class BenchRequest:
    """One `edgebench bench` invocation. Paths are as seen by whoever carries it out."""

    artifacts: str                       # folder with model.keras, the exported formats and manifest.json
    out: str                             # results JSON to write
    suite: Optional[str] = None          # suite YAML; None: the kit's default suite
    data: Optional[str] = None           # CIFAR-10 source; None: $EDGEBENCH_DATA, else Keras' download
    device: str = "local"                # name of the device in the results
    test_limit: Optional[int] = None     # use only this many test images
    only: Optional[List[str]] = None     # run only these backends of the suite
    reference: str = REFERENCE_BACKEND   # backend whose FP32 logits every row is compared with
    resume: bool = False                 # keep completed groups of an interrupted run in `out`
    force: bool = False                  # overwrite an existing results file at `out`
    allow_unverified: bool = False       # measure artifacts whose sha256 does not match the manifest (rows say so)
    extra: Dict[str, Any] = field(default_factory=dict)  # launcher-specific settings, never on the command line

    def __post_init__(self) -> None:
        if not self.artifacts:
            raise ValueError("a bench request needs an artifacts folder")
        if not self.out:
            raise ValueError("a bench request needs an --out results file")
        if self.test_limit is not None and int(self.test_limit) < 1:
            raise ValueError(f"--test-limit must be a positive number of images, not {self.test_limit}")
        if self.resume and self.force:
            raise ValueError("--resume continues the file at --out and --force replaces it: choose one")

    def with_paths(self, **paths: Optional[str]) -> "BenchRequest":
        """The same request with some paths replaced (artifacts, out, suite, data)."""
        unknown = set(paths) - {"artifacts", "out", "suite", "data"}
        if unknown:
            raise ValueError(f"not path fields of a bench request: {sorted(unknown)}")
        return replace(self, **paths)

    def to_argv(self) -> List[str]:
        """The `edgebench bench ...` arguments (without the program name) that carry out this request."""
        argv = ["bench", "--artifacts", self.artifacts, "--out", self.out, "--device", self.device]
        if self.suite:
            argv += ["--suite", self.suite]
        if self.data:
            argv += ["--data", self.data]
        if self.test_limit:
            argv += ["--test-limit", str(int(self.test_limit))]
        if self.only:
            argv += ["--only", *self.only]
        if self.reference != REFERENCE_BACKEND:
            argv += ["--reference", self.reference]
        if self.resume:
            argv.append("--resume")
        if self.force:
            argv.append("--force")
        if self.allow_unverified:
            argv.append("--allow-unverified")
        return argv

    def to_dict(self) -> Dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> "BenchRequest":
        names = {f.name for f in fields(cls)} - {"extra"}
        return cls(**{k: v for k, v in vars(args).items() if k in names})


def add_arguments(p: argparse.ArgumentParser) -> None:
    """`edgebench bench`'s options: one per BenchRequest field (tests check they stay in step)."""
    p.add_argument("--artifacts", required=True, help="folder with model.keras and the exported formats (manifest.json)")
    p.add_argument("--out", required=True, help="results JSON to write (rewritten atomically after every row)")
    p.add_argument("--suite", help="suite YAML (default: the kit's default suite)")
    p.add_argument("--device", default="local", help="name of this device in the results (default: local)")
    p.add_argument("--data", help="CIFAR-10 source (default: $EDGEBENCH_DATA, else Keras' download)")
    p.add_argument("--test-limit", type=int, help="use only this many test images (quick runs, tests)")
    p.add_argument("--only", nargs="+", metavar="BACKEND", help="run only these backends of the suite")
    p.add_argument("--reference", default=REFERENCE_BACKEND,
                   help="backend whose FP32 logits every row is compared with (default: the Keras model; "
                        "'onnxruntime' where TensorFlow is absent)")
    p.add_argument("--resume", action="store_true",
                   help="continue the results file at --out, started by the same request (suite, test images, "
                        "artifacts, data, reference; a different one is refused): completed groups are kept, "
                        "failed, killed or missing ones are measured again")
    p.add_argument("--force", action="store_true",
                   help="replace an existing edgebench results file at --out (a file that is not one is never "
                        "touched)")
    p.add_argument("--allow-unverified", action="store_true",
                   help="measure artifacts whose sha256 does not match the export manifest (refused otherwise); "
                        "every row then says it is unverified")


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
