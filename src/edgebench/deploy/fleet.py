"""The fleet: preflight, deploy and bench over every selected device, in parallel (or one at a time).

Each device is its own unit of work: a failure (unreachable, host key, preflight, transfer, container)
is an `Outcome` with status `failed`/`refused`, the step and the reason; the other devices carry on.
"""
from __future__ import annotations

import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import IO, Any, Callable, Dict, List, Optional

from edgebench.deploy.errors import DeployError, DeviceError
from edgebench.deploy.inventory import Device, Inventory


@dataclass
class Outcome:
    device: str
    status: str                       # ok | refused | failed
    step: str = ""
    reason: str = ""
    seconds: float = 0.0
    details: Dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> Dict[str, Any]:
        return asdict(self)


def kit_tag(target: str) -> str:
    from edgebench import __version__

    return f"edgebench:{__version__}-{target}"


def for_each(devices: List[Device], work: Callable[[Device], Outcome], parallel: bool = True) -> List[Outcome]:
    def guarded(d: Device) -> Outcome:
        started = time.monotonic()
        try:
            out = work(d)
        except DeviceError as exc:
            out = Outcome(d.name, "refused" if exc.step == "preflight" else "failed", exc.step, exc.reason)
        except Exception as exc:  # noqa: BLE001 - one device's failure never stops the fleet
            out = Outcome(d.name, "failed", "unexpected", f"{type(exc).__name__}: {exc}")
        out.seconds = round(time.monotonic() - started, 2)
        return out

    if parallel and len(devices) > 1:
        with ThreadPoolExecutor(max_workers=len(devices)) as pool:
            return list(pool.map(guarded, devices))
    return [guarded(d) for d in devices]


def connection(inv: Inventory, device: Device) -> Any:
    from edgebench.deploy.ssh import connect

    return connect(device, str(inv.known_hosts_path()))


def preflight(inv: Inventory, device: Device, conn: Any, image_bytes: Optional[int] = None,
              image_id: Optional[str] = None) -> Any:
    """Probe + judge; DeviceError(step=preflight) when the device is refused."""
    from edgebench.deploy.preflight import judge, probe
    from edgebench.deploy.transfer import device_image_id
    from edgebench.docker.targets import load

    present = bool(image_id) and device_image_id(conn.api, image_id) == image_id
    check = judge(probe(conn, device), device, load(device.target), image_bytes, image_present=present)
    if check.problems:
        raise DeviceError(device.name, "preflight", "; ".join(check.problems))
    return check


def devices_table(inv: Inventory, names: Any = None, image_bytes: Optional[int] = None) -> List[Any]:
    """Preflight every device (no image moved): a DeviceCheck each, unreachable ones included."""
    from edgebench.deploy.preflight import DeviceCheck, judge, probe
    from edgebench.docker.targets import load

    checks: Dict[str, Any] = {}

    def one(d: Device) -> Outcome:
        try:
            with connection(inv, d) as conn:
                checks[d.name] = judge(probe(conn, d), d, load(d.target), image_bytes)
        except DeviceError as exc:
            checks[d.name] = DeviceCheck(d.name, reachable=False, problems=[f"{exc.step}: {exc.reason}"])
        except Exception as exc:  # noqa: BLE001 - any other failure is this device's row, with its cause
            checks[d.name] = DeviceCheck(d.name, reachable=False,
                                         problems=[f"preflight: {type(exc).__name__}: {exc}"])
        return Outcome(d.name, "ok")

    devices = inv.select(names)
    for_each(devices, one)
    return [checks[d.name] for d in devices]


#: how `deploy --via` moves an image (the CLI's choices and the invoke task's check read this)
#: ssh = layers through a local registry and an SSH port forward; ssh-stream = the whole `docker save` each time
VIAS = ("auto", "registry", "ssh", "ssh-stream")


def check_via(via: Any) -> str:
    """`via`, or DeployError naming the allowed values (a typo such as 'regsitry' never falls back to SSH)."""
    if via not in VIAS:
        raise DeployError(f"--via {via!r} is not one of {', '.join(VIAS)}")
    return via


def deploy(inv: Inventory, names: Any = None, *, image: Optional[str] = None, via: str = "auto",
           lock: Optional[Path] = None, parallel: bool = True, local_api: Any = None,
           registry_root: Optional[Path] = None) -> List[Outcome]:
    """Put each device's target image on it (registry pull by digest, SSH layers through a local registry at
    `registry_root`, or the SSH stream) and tag it."""
    check_via(via)
    from edgebench.deploy import publish as pub
    from edgebench.deploy import transfer

    devices = inv.select(names)
    via = via if via != "auto" else ("registry" if inv.registry or (image and "@sha256:" in image) else "ssh")
    entries = pub.read_lock(lock or pub.lock_path())
    api_holder: Dict[str, Any] = {"api": local_api}

    def local() -> Any:
        if api_holder["api"] is None:
            from edgebench.docker.client import api_client

            api_holder["api"] = api_client()
        return api_holder["api"]

    def source(d: Device) -> Dict[str, Any]:
        """What goes onto `d`: a digest ref (registry) or a local image (ssh), its id and size."""
        if via == "registry":
            if image:
                e = next((e for e in entries.values() if e.ref == image), None)
                return {"ref": image, "id": e.image_id if e else None, "size": e.size if e else None}
            e = entries.get(d.target)
            if not e:
                raise DeviceError(d.name, "image", f"no published {d.target} image in the lock file: "
                                                   f"`invoke publish --target {d.target}` first, or --image REF")
            return {"ref": e.ref, "id": e.image_id, "size": e.size}
        ref = image or kit_tag(d.target)
        try:
            info = local().inspect_image(ref)
        except Exception as exc:
            raise DeviceError(d.name, "image", f"{ref} is not on this machine (`invoke build --target "
                                               f"{d.target}`): {exc}") from exc
        pub.check_clean(local(), ref, deep=False)
        if via == "ssh":   # pushed before the device's SSH session opens: a push of minutes would leave it idle
            transfer.push_local(registry, local(), d.name, ref, d.target)
        return {"ref": ref, "id": info["Id"], "size": int(info["Size"])}

    def work(d: Device) -> Outcome:
        missing: Optional[DeployError] = None
        src: Dict[str, Any] = {"size": None, "id": None}
        try:
            src = source(d)
        except DeployError as exc:  # reported after the preflight, which says more about the device
            missing = exc
        with connection(inv, d) as conn:
            preflight(inv, d, conn, src["size"], src["id"])
            if missing is not None:
                raise missing if isinstance(missing, DeviceError) else DeviceError(d.name, "image", str(missing))
            tag = kit_tag(d.target)
            if via == "registry":
                res = transfer.pull_by_digest(conn.api, d.name, src["ref"], tag, src["id"])
            elif via == "ssh":
                res = transfer.ssh_layers(local(), conn, d.name, src["ref"], tag, registry, d.target)
            else:
                res = transfer.stream(local(), conn.api, d.name, src["ref"], tag)
        return Outcome(d.name, "ok", "deploy", "", details={
            "method": res.method, "image_id": res.image_id, "tag": res.tag, "digest": res.digest,
            "seconds": round(res.seconds, 2), "bytes": res.bytes_moved, "mb_per_s": res.mb_per_s, "push": res.push})

    from edgebench.deploy.localregistry import LocalRegistry

    reg = LocalRegistry(registry_root)   # `--via ssh`: started on first use, once for all devices
    registry = reg.ensure
    try:
        return for_each(devices, work, parallel)
    finally:
        reg.stop()


def bench(inv: Inventory, request: Any, names: Any = None, *, results_dir: Path, parallel: bool = True,
          lock: Optional[Path] = None, echo: Optional[IO[str]] = sys.stderr) -> List[Outcome]:
    """`request` on every device (its deployed image); results/<stem>-<device>.json each."""
    from edgebench.deploy import publish as pub
    from edgebench.docker.targets import load
    from edgebench.launchers.remote import RemoteLauncher

    entries = pub.read_lock(lock or pub.lock_path())
    stem = Path(request.out).stem

    def work(d: Device) -> Outcome:
        tag = kit_tag(d.target)
        started = time.monotonic()
        conn = connection(inv, d)  # handed to the launcher, which closes it
        try:
            preflight(inv, d, conn)
            info = conn.api.inspect_image(tag)
        except Exception as exc:
            conn.close()
            if isinstance(exc, DeviceError):
                raise
            raise DeviceError(d.name, "image", f"{tag} is not on the device: `invoke deploy --devices "
                                               f"{d.name}` first ({type(exc).__name__})") from exc
        pre = time.monotonic() - started
        digests = info.get("RepoDigests") or []
        e = entries.get(d.target)
        digest = digests[0] if digests else (e.ref if e and e.image_id == info["Id"] else None)
        launcher = RemoteLauncher(d, load(d.target), tag, lambda: conn, digest=digest, echo=echo)
        req = request.with_paths(out=str(results_dir / f"{stem}-{d.name}.json"))
        req = replace(req, device=d.name)   # the inventory name: what `reproduce` looks the device up by
        try:
            res = launcher.launch(req)
        except DeployError as exc:
            conn.close()
            raise DeviceError(d.name, "bench", str(exc)) from exc
        except Exception as exc:
            conn.close()
            raise DeviceError(d.name, "bench", f"{type(exc).__name__}: {exc}") from exc
        timings = dict(res.details.get("timings", {}))
        timings["preflight"] = round(pre, 3)
        status = "ok" if res.exit_code == 0 else "failed"
        return Outcome(d.name, status, "bench", "" if status == "ok" else f"some rows failed (exit {res.exit_code})",
                       details={"results": str(res.results), "image_id": res.details.get("image_id"),
                                "digest": digest, "timings": timings, "bytes_sent": res.details.get("bytes_sent")})

    return for_each(inv.select(names), work, parallel)


def summary(outcomes: List[Outcome], what: str) -> str:
    lines = [f"{what}: {sum(o.status == 'ok' for o in outcomes)}/{len(outcomes)} devices ok"]
    for o in outcomes:
        extra = o.details.get("results") or ""
        if what == "deploy" and o.status == "ok":
            d = o.details
            extra = (f"{d['method']} {d['image_id'][:19]} in {d['seconds']:.1f} s, {d['bytes'] / 1e6:.1f} MB moved"
                     + (f" ({d['mb_per_s']} MB/s)" if d.get("mb_per_s") else ""))
        lines.append(f"  {o.device:16s} {o.status:8s} {o.seconds:7.1f} s  "
                     + (f"{o.step}: {o.reason}" if o.status != "ok" else extra))
    return "\n".join(lines)


__all__ = ["Outcome", "deploy", "bench", "devices_table", "summary", "for_each", "kit_tag", "preflight"]
