"""`edgebench devices | publish | deploy | reproduce` (and `invoke` tasks of the same names, which call the
`run_*` functions here). Each prints a per-device summary; exit status 0 when every device is ok, 1 when
any failed or was refused, 2 for bad input (inventory, lock file, results file).
"""
from __future__ import annotations

import inspect
import json
import sys
from pathlib import Path
from typing import Any, List, Optional

from edgebench.deploy.errors import DeployError


def _inventory(path: Optional[str], config_value: Optional[str] = None) -> Any:
    from edgebench.deploy import inventory

    return inventory.load(inventory.find_inventory(path, config_value))


def _finish(outcomes: List[Any], what: str, as_json: bool) -> int:
    from edgebench.deploy.fleet import summary

    if as_json:
        print(json.dumps([o.to_dict() for o in outcomes], indent=2))
    else:
        print(summary(outcomes, what))
    return 0 if outcomes and all(o.status == "ok" for o in outcomes) else 1


def run_devices(*, inventory: Optional[str] = None, devices: Optional[str] = None, as_json: bool = False,
                config_value: Optional[str] = None) -> int:
    from edgebench.deploy.fleet import devices_table
    from edgebench.deploy.preflight import table

    checks = devices_table(_inventory(inventory, config_value), devices)
    print(json.dumps([c.to_dict() for c in checks], indent=2) if as_json else table(checks))
    return 0 if all(c.ok for c in checks) else 1


def run_publish(target: str, *, inventory: Optional[str] = None, registry: Optional[str] = None,
                image: Optional[str] = None, lock: Optional[str] = None, config_value: Optional[str] = None) -> int:
    from edgebench.deploy.publish import publish

    registry = registry or _inventory(inventory, config_value).registry
    if not registry:
        raise DeployError("publish needs a registry: `registry: host:port/repo` in the inventory, or --registry")
    res = publish(target, registry, image=image, lock=Path(lock) if lock else None,
                  progress=lambda m: print(m, flush=True))
    e = res.entry
    print(f"published {e.ref}\n  image {e.image_id}, {e.size / 1e9:.2f} GB; {res.layers_pushed} layers pushed "
          f"({res.bytes_pushed / 1e6:.1f} MB), {res.layers_existing} already there; {res.seconds:.1f} s")
    return 0


def run_deploy(*, inventory: Optional[str] = None, devices: Optional[str] = None, image: Optional[str] = None,
               via: str = "auto", serial: bool = False, lock: Optional[str] = None, as_json: bool = False,
               config_value: Optional[str] = None) -> int:
    from edgebench.deploy.fleet import check_via, deploy

    check_via(via)   # before anything is read or connected: a typo is refused, never streamed over SSH
    outcomes = deploy(_inventory(inventory, config_value), devices, image=image, via=via,
                      lock=Path(lock) if lock else None, parallel=not serial)
    return _finish(outcomes, "deploy", as_json)


def run_bench(request: Any, *, inventory: Optional[str] = None, devices: Optional[str] = None, serial: bool = False,
              results_dir: Optional[str] = None, lock: Optional[str] = None, as_json: bool = False,
              config_value: Optional[str] = None) -> int:
    from edgebench.deploy.fleet import bench

    outcomes = bench(_inventory(inventory, config_value), request, devices,
                     results_dir=Path(results_dir or Path(request.out).parent), parallel=not serial,
                     lock=Path(lock) if lock else None)
    return _finish(outcomes, "bench", as_json)


def run_reproduce(results: str, artifacts: str, *, inventory: Optional[str] = None, devices: Optional[str] = None,
                  data: Optional[str] = None, results_dir: str = "results", reports_dir: Optional[str] = None,
                  serial: bool = False, lock: Optional[str] = None, config_value: Optional[str] = None,
                  suite: Optional[str] = None) -> int:
    from edgebench.deploy import reproduce

    names = None if devices == "all" else devices   # the command line's default: the result's own device
    out = reproduce.run(_inventory(inventory, config_value), Path(results), Path(artifacts), names=names,
                        data=data, results_dir=Path(results_dir), report_dir=Path(reports_dir) if reports_dir else None,
                        parallel=not serial, lock=Path(lock) if lock else None, echo=sys.stderr,
                        suite_file=Path(suite) if suite else None)
    code = _finish(list(out["deploy"]), "deploy", False)
    if out["bench"]:
        code = max(code, _finish(list(out["bench"]), "bench", False))
    for device, html in out["reports"].items():
        print(f"comparison {device}: {html}")
    return code


def add_parser(sub: Any) -> None:
    from edgebench.deploy.fleet import VIAS  # light: errors and inventory only

    def common(p: Any, devices: bool = True) -> None:
        p.add_argument("--inventory", help="devices.yaml (default: invoke.yaml's edgebench.inventory, then "
                                           "devices.yaml at the repo root)")
        if devices:
            p.add_argument("--devices", default="all", help="all, or a comma-separated list of device names")

    p = sub.add_parser("devices", help="preflight table of every device in the inventory")
    common(p)
    p.add_argument("--json", action="store_true", dest="as_json")
    p.set_defaults(func=lambda a: _guard(run_devices, a))

    p = sub.add_parser("publish", help="push a built image to the registry and record it in images.lock.json")
    common(p, devices=False)
    p.add_argument("--target", required=True)
    p.add_argument("--registry", help="host:port/repo (default: the inventory's registry)")
    p.add_argument("--image", help="local image (default edgebench:<version>-<target>)")
    p.add_argument("--lock", help="lock file (default images.lock.json at the repo root)")
    p.set_defaults(func=lambda a: _guard(run_publish, a))

    p = sub.add_parser("deploy", help="put the image on each device (registry by digest, or streamed over SSH)")
    common(p)
    p.add_argument("--image", help="a published repo@sha256:... (no local build needed), or a local image")
    p.add_argument("--via", choices=list(VIAS), default="auto",
                   help="auto: the registry when the inventory names one, else ssh; ssh: only the layers the "
                        "device lacks, from a registry on this machine through an SSH port forward; ssh-stream: "
                        "the whole image (docker save | docker load) over SSH")
    p.add_argument("--serial", action="store_true", help="one device at a time")
    p.add_argument("--lock", help="lock file (default images.lock.json at the repo root)")
    p.add_argument("--json", action="store_true", dest="as_json")
    p.set_defaults(func=lambda a: _guard(run_deploy, a))

    p = sub.add_parser("reproduce", help="re-run a results JSON in the identical image and compare")
    common(p)
    p.add_argument("results")
    p.add_argument("--artifacts", required=True, help="the artifacts folder (checked file by file by sha256)")
    p.add_argument("--data", help="CIFAR-10 source")
    p.add_argument("--results-dir", default="results")
    p.add_argument("--reports-dir")
    p.add_argument("--serial", action="store_true")
    p.add_argument("--suite", help="the original suite file, when the result's own copy cannot be rebuilt")
    p.set_defaults(func=lambda a: _guard(run_reproduce, a))


def _guard(fn: Any, args: Any) -> int:
    """Call a run_* function with the parsed options it takes (by name: the parser's dest is the parameter)."""
    params = inspect.signature(fn).parameters
    try:
        return fn(**{k: v for k, v in vars(args).items() if k in params})
    except DeployError as exc:
        print(f"edgebench: {exc}", file=sys.stderr)
        return 2


__all__ = ["add_parser", "run_devices", "run_publish", "run_deploy", "run_bench", "run_reproduce"]
