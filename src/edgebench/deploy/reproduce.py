"""`reproduce RESULTS.json`: run a result again in the identical container, then compare the two.

Same image (the digest the result records, pulled by digest; or, when it records only an image id, that
id already on the device), same artifacts (every file's sha256 as the result records; refused when one
differs or is missing), same suite (rebuilt from the result, its digest checked), same test images,
reference and backends; on the same or another device. The comparison is rendered by
`edgebench.report.render_report` in its original-vs-re-run mode.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional

from edgebench.contracts.vocabulary import RESOLVED_THREADS_KEY
from edgebench.deploy.errors import DeployError

SUITE_RESOLVED_KEYS = (RESOLVED_THREADS_KEY, "data")   # added by the harness to the suite it records


class ReproduceError(DeployError, ValueError):
    """The result cannot be reproduced as asked (names the file and what differs)."""


@dataclass
class Plan:
    results: Path
    device: str
    image_ref: Optional[str]        # repo@sha256:... or None
    image_id: Optional[str]
    target: Optional[str]
    artifacts: Dict[str, str]       # relpath -> sha256
    suite: Dict[str, Any]
    suite_sha256: Optional[str]
    test_images: Optional[int]
    reference: Optional[str]
    only: Optional[List[str]]


def _spec():
    """What reproduce reads beyond the results schema: environment.container and request (issue 20)."""
    from edgebench.contracts.schema import Anything, Int, List_, Map, Null, Str

    sha = Str(pattern=r"^sha256:[0-9a-f]{64}$", hint="sha256: and 64 hex digits")
    text = Str(max_len=4096) | Null()
    container = Map({"image_id": sha | Null(), "image_digest": Str(pattern=r"^[^@\s]+@sha256:[0-9a-f]{64}$",
                                                                   hint="repo@sha256:...") | Null(),
                     "target": text}, extra=Anything())
    request = Map({"artifacts": Map({}, extra=Str(pattern=r"^[0-9a-f]{64}$", hint="a sha256 hex digest")) | Null(),
                   "suite": Map({"name": Anything(), "sha256": text}, extra=Anything()) | Null(),
                   "test_images": Int(1, 10 ** 8) | Null(), "reference": text,
                   "only": List_(Str(max_len=64), 1, 100) | Null()}, extra=Anything())
    return Map({"environment": Map({"container": container | Null()}, extra=Anything()),
                "request": request | Null()}, extra=Anything())


def _read(results: Path) -> Dict[str, Any]:
    from edgebench import results as results_mod
    from edgebench.contracts.schema import SchemaProblem, check

    try:
        doc = results_mod.load(results)
        check(doc, _spec())
    except results_mod.ResultsError as exc:
        raise ReproduceError(f"cannot reproduce: {exc}") from None
    except SchemaProblem as exc:
        raise ReproduceError(f"{results}: cannot reproduce: {exc}") from None
    return doc


def plan(results: Path) -> Plan:
    results = Path(results)
    doc = _read(results)
    container = (doc.get("environment") or {}).get("container") or {}
    req = doc.get("request") or {}
    if not container.get("image_id"):
        raise ReproduceError(f"{results}: not measured in a container (no environment.container.image_id): there "
                             f"is no identical container to re-run it in")
    if not req.get("artifacts"):
        raise ReproduceError(f"{results}: records no artifact checksums (request.artifacts); cannot check them")
    suite = {k: v for k, v in (doc.get("suite") or {}).items() if k not in SUITE_RESOLVED_KEYS}
    # `test_images` is the suite's own key and also overwritten with the count used: keep whichever
    # version hashes to the recorded digest (write_suite checks)
    candidates = [suite, {k: v for k, v in suite.items() if k != "test_images"}]
    return Plan(results=results, device=str(doc.get("device") or ""), image_ref=container.get("image_digest"),
                image_id=container.get("image_id"), target=container.get("target"),
                artifacts=dict(req["artifacts"]), suite=_pick(candidates, (req.get("suite") or {}).get("sha256")),
                suite_sha256=(req.get("suite") or {}).get("sha256"),
                test_images=req.get("test_images"), reference=req.get("reference"), only=req.get("only"))


def _pick(candidates: List[Dict[str, Any]], digest: Optional[str]) -> Dict[str, Any]:
    from edgebench.bench.resume import suite_digest

    return next((c for c in candidates if digest and suite_digest(c) == digest), candidates[0])


def check_artifacts(p: Plan, artifacts: Path) -> None:
    """ReproduceError unless every artifact the result used is in `artifacts` with the same sha256."""
    from edgebench.util import sha256_file

    bad = []
    for rel, want in sorted(p.artifacts.items()):
        f = Path(artifacts) / rel
        if not f.is_file():
            bad.append(f"{rel}: missing")
            continue
        got = sha256_file(f)
        if got != want:
            bad.append(f"{rel}: sha256 {got[:16]}... but the result used {want[:16]}...")
    if bad:
        raise ReproduceError(f"{p.results}: the artifacts in {artifacts} are not the ones measured "
                             f"({'; '.join(bad)}): refused")


def write_suite(p: Plan, folder: Path, suite_file: Optional[Path] = None) -> Path:
    """The result's suite as a YAML file (or `suite_file`, the original); its digest must equal the recorded one."""
    import yaml

    from edgebench.bench.resume import suite_digest

    if suite_file is not None:
        raw = yaml.safe_load(Path(suite_file).read_text(encoding="utf-8"))
        if p.suite_sha256 and suite_digest(raw) != p.suite_sha256:
            raise ReproduceError(f"{suite_file} is not the suite {p.results} was measured with (sha256 differs)")
        return Path(suite_file)
    if p.suite_sha256 and suite_digest(p.suite) != p.suite_sha256:
        raise ReproduceError(f"{p.results}: the suite recorded in the result cannot be rebuilt to its recorded "
                             f"sha256 (the run changed its test_images): pass the original suite file (--suite)")
    path = Path(folder) / f"reproduce-{p.results.stem}-suite.yaml"
    path.write_text(yaml.safe_dump(p.suite, sort_keys=False), encoding="utf-8")
    return path


def request_for(p: Plan, artifacts: Path, out: Path, suite: Path, data: Optional[str]) -> Any:
    from edgebench.launchers import BenchRequest

    kwargs: Dict[str, Any] = {"artifacts": str(artifacts), "out": str(out), "suite": str(suite), "data": data,
                              "device": p.device or "reproduce", "test_limit": p.test_images,
                              "only": p.only, "force": True}
    if p.reference:
        kwargs["reference"] = p.reference
    return BenchRequest(**kwargs)


def _device_named(inv: Any, recorded: str) -> Optional[str]:
    """The inventory device a result was measured on: by name, or (files written before issue 20 recorded the
    label) by a label that only one device has."""
    if recorded in {d.name for d in inv.devices}:
        return recorded
    labelled = [d.name for d in inv.devices if d.label and d.label == recorded]
    return labelled[0] if len(labelled) == 1 else None


def _deploy(inv: Any, p: Plan, names: Any, lock: Optional[Path], parallel: bool):
    from edgebench.deploy import fleet

    if p.image_ref:
        deployed = fleet.deploy(inv, names, image=p.image_ref, via="registry", lock=lock, parallel=parallel)
    else:  # deployed over SSH earlier: the same image id must be on this machine to send it again (layers)
        deployed = fleet.deploy(inv, names, image=p.image_id, via="ssh", lock=lock, parallel=parallel)
    for o in deployed:
        if o.status == "ok" and o.details.get("image_id") != p.image_id:
            o.status, o.step = "failed", "verify"
            o.reason = f"image id {o.details.get('image_id')} on the device, the result used {p.image_id}"
    return deployed, [o.device for o in deployed if o.status == "ok"]


def run(inv: Any, results: Path, artifacts: Path, *, names: Any = None, data: Optional[str] = None,
        results_dir: Path, report_dir: Optional[Path] = None, parallel: bool = True, lock: Optional[Path] = None,
        echo: Any = None, suite_file: Optional[Path] = None) -> Dict[str, Any]:
    """Check, deploy the same image, re-run, compare. {plan, deploy, bench, reports} (outcomes per device)."""
    from edgebench.deploy import fleet

    p = plan(results)
    check_artifacts(p, artifacts)
    names = names or _device_named(inv, p.device)
    if not names:
        raise ReproduceError(f"{results}: measured on {p.device!r}, which is not in {inv.path}: name the devices "
                             f"to re-run it on (--devices a,b)")
    results_dir = Path(results_dir)
    results_dir.mkdir(parents=True, exist_ok=True)
    suite = write_suite(p, results_dir, suite_file)
    ready: List[str] = []
    try:
        deployed, ready = _deploy(inv, p, names, lock, parallel)
    finally:
        if suite_file is None and not ready:   # nothing will run: leave no suite file in results/
            suite.unlink(missing_ok=True)
    benched: List[Any] = []
    reports: Dict[str, str] = {}
    if ready:
        req = request_for(p, artifacts, results_dir / f"reproduce-{p.results.stem}.json", suite, data)
        benched = fleet.bench(inv, req, ready, results_dir=results_dir, parallel=parallel, lock=lock, echo=echo)
        from edgebench.report import render_report

        for o in benched:
            if o.details.get("results"):
                out = Path(report_dir or results_dir.parent / "reports") / f"reproduce-{p.results.stem}-{o.device}"
                html, _ = render_report([str(p.results), o.details["results"]], str(out),
                                        title=f"reproduce {p.results.name} on {o.device}", include_reference=False,
                                        reproduction=True)
                reports[o.device] = str(html)
    return {"plan": p, "deploy": deployed, "bench": benched, "reports": reports}


__all__ = ["Plan", "ReproduceError", "plan", "check_artifacts", "write_suite", "request_for", "run"]
