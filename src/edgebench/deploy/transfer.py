"""Put an image on a device: pulled from the registry by digest, its layers over SSH, or streamed whole.

- `pull_by_digest`: the device's engine pulls `repo@sha256:...` (layers it already has are not moved).
- `ssh_layers` (`deploy --via ssh`): this machine's engine pushes the image into a local registry
  (`deploy/localregistry.py`); the device's engine pulls it by digest from its own 127.0.0.1, forwarded over the
  device's SSH connection (`deploy/tunnel.py`), so only layers it lacks cross. Partial images ("rungs") are pulled
  first, so a cut keeps every complete rung.
- `stream` (`--via ssh-stream`): `docker save` of the image *id* on this machine, chunk by chunk into the device's
  `docker load` over the SSH connection; no file on either side.

Every way the image is checked (its id must equal the expected one) before the kit's usual tag
(`edgebench:<version>-<target>`) is set on the device, so a transfer cut midway leaves nothing tagged.
What a cut keeps (measured on the deploy rig, Docker 20.10 / 24): nothing of the cut pull or load. After a pull
cut midway, and after a `docker load` cut midway, the device's store was empty again; a `--via ssh` pull cut
midway dropped the layers that had arrived in it, but its complete rungs stayed. Each failure says which of these
happened (`explain_pull`): the registry unreachable, the digest not in the registry, the registry refusing the
credentials, or the transfer cut; each with its own advice.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable, Dict, Iterator, Optional

from edgebench.deploy.errors import DeviceError


@dataclass
class TransferResult:
    method: str          # registry | ssh-stream | present
    image_id: str
    tag: str
    seconds: float
    bytes_moved: int
    digest: Optional[str] = None
    push: Optional[Dict[str, Any]] = None   # ssh-layers: the push into the local registry (seconds, bytes, layers)

    @property
    def mb_per_s(self) -> Optional[float]:
        return round(self.bytes_moved / 1e6 / self.seconds, 1) if self.seconds > 0 and self.bytes_moved else None


def device_image_id(api: Any, ref: str) -> Optional[str]:
    from docker.errors import ImageNotFound, NotFound

    try:
        return api.inspect_image(ref)["Id"]
    except (ImageNotFound, NotFound):
        return None


def _split_tag(tag: str) -> Dict[str, str]:
    repo, _, name = tag.rpartition(":")
    if not repo or "/" in name:
        return {"repository": tag, "tag": "latest"}
    return {"repository": repo, "tag": name}


def finish(api: Any, device: str, got: Optional[str], expected: Optional[str], tag: str) -> str:
    """Check the image id on the device, then (only then) tag it."""
    if not got:
        raise DeviceError(device, "verify", "the transfer ended without an image on the device; nothing was tagged")
    if expected and got != expected:
        raise DeviceError(device, "verify", f"image id on the device is {got}, expected {expected}: not tagged")
    api.tag(got, **_split_tag(tag))
    return got


#: (kind, words of the engine's message that mean it, advice) in the order they are tried
PULL_FAILURES = (
    ("registry unreachable", ("connection refused", "no such host", "i/o timeout", "no route to host",
                              "network is unreachable", "dial tcp", "server gave http response to https"),
     "the device cannot reach the registry: check that it runs and that the device reaches its address "
     "(`curl http://<registry>/v2/` on the device); nothing was moved"),
    ("digest not in the registry", ("manifest unknown", "not found", "name unknown", "blob unknown"),
     "the registry does not hold this digest: publish the image again (`invoke publish`) or deploy the digest "
     "images.lock.json names; nothing was moved"),
    ("credentials refused", ("unauthorized", "authentication required", "denied", "no basic auth credentials",
                             "status 401", "status 403"),
     "the registry refused the credentials: `docker login <registry>` on this machine (the pull sends this "
     "machine's Docker credentials); nothing was moved"),
)
FORWARD_CUT_ADVICE = ("run deploy again: the engine drops the layers of a cut pull, but keeps each partial image "
                      "(every ~64 MB of layers) that was complete, so the rerun sends only the layers from the "
                      "one in progress on; the push into this machine's registry is not repeated")
CUT_ADVICE = ("run deploy again: the engine kept nothing of the cut transfer (measured: the device's store was "
              "empty afterwards), so it moves the whole image again")


#: `deploy --via ssh`: the registry is this machine's, reached through the SSH forward
FORWARD_ADVICE = {
    "registry unreachable": "the device's engine did not reach the SSH port forward on the device's 127.0.0.1 "
                            "(an engine in another network namespace than sshd, rootless Docker for one, does not "
                            "see it; `--via ssh-stream` needs no forward); nothing was moved",
    "digest not in the registry": "this machine's local registry lost the image (its store was removed while "
                                  "deploying?): deploy again, which pushes it again; nothing was moved",
}


def explain_pull(ref: str, message: str, advice: Optional[Dict[str, str]] = None) -> str:
    """The engine's pull error as what happened + what to do (one line); `advice` replaces a kind's advice."""
    low = message.lower()
    for kind, words, default in PULL_FAILURES:
        if any(w in low for w in words):
            return f"{ref}: {kind} ({message.strip()}); {(advice or {}).get(kind, default)}"
    return f"{ref}: the pull failed ({message.strip()}); nothing was tagged"


def pull_events(api: Any, device: str, ref: str, cut_advice: str = "",
                moved: Optional[Callable[[], int]] = None, advice: Optional[Dict[str, str]] = None) -> int:
    """The device's engine pulls `ref` (repo@sha256:...); the bytes Docker announced (compressed layers).
    Each failure is a DeviceError(step=pull) saying what happened (`explain_pull`); `moved` counts the bytes that
    really crossed (the SSH forward) for the message of a cut."""
    repo, digest = ref.split("@", 1)
    totals: Dict[str, int] = {}
    try:
        for ev in api.pull(repo, tag=digest, stream=True, decode=True):
            if ev.get("error") or ev.get("errorDetail"):
                msg = str(ev.get("error") or (ev.get("errorDetail") or {}).get("message"))
                raise DeviceError(device, "pull", explain_pull(ref, msg, advice))
            if ev.get("status") == "Downloading" and ev.get("id"):
                total = (ev.get("progressDetail") or {}).get("total")
                if total:
                    totals[ev["id"]] = int(total)
    except DeviceError:
        raise
    except Exception as exc:
        from docker.errors import APIError

        if isinstance(exc, APIError):   # the engine answered: the request itself failed (registry, digest, auth)
            raise DeviceError(device, "pull", explain_pull(ref, str(exc.explanation or exc), advice)) from exc
        # the engine or the SSH connection went away midway
        what = (f"{moved() / 1e6:.0f} MB moved" if moved else f"{sum(totals.values()) / 1e6:.0f} MB announced")
        raise DeviceError(device, "pull", f"{ref}: transfer cut after {what} ({type(exc).__name__}: {exc}); "
                                          f"nothing was tagged; {cut_advice or CUT_ADVICE}") from exc
    return sum(totals.values())


def pull_by_digest(api: Any, device: str, ref: str, tag: str, expected_id: Optional[str] = None) -> TransferResult:
    """`ref` = repo@sha256:...; pulled by the device's engine, verified, then tagged `tag`."""
    if "@sha256:" not in ref:
        raise DeviceError(device, "pull", f"{ref} is not pinned by digest (repo@sha256:...)")
    started = time.monotonic()
    present = device_image_id(api, ref)
    if present and (not expected_id or present == expected_id):
        finish(api, device, present, expected_id, tag)
        return TransferResult("present", present, tag, time.monotonic() - started, 0, ref.split("@", 1)[1])
    announced = pull_events(api, device, ref)
    got = finish(api, device, device_image_id(api, ref), expected_id, tag)
    return TransferResult("registry", got, tag, time.monotonic() - started, announced, ref.split("@", 1)[1])


class _Counted:
    def __init__(self, chunks: Iterator[bytes]):
        self.chunks = chunks
        self.bytes = 0

    def __iter__(self) -> Iterator[bytes]:
        for c in self.chunks:
            self.bytes += len(c)
            yield c


def stream(local_api: Any, api: Any, device: str, image: str, tag: str) -> TransferResult:
    """Stream this machine's `image` (saved by id: the tar carries no tag) into the device's engine."""
    local_id = local_api.inspect_image(image)["Id"]
    started = time.monotonic()
    if device_image_id(api, local_id) == local_id:
        finish(api, device, local_id, local_id, tag)
        return TransferResult("present", local_id, tag, time.monotonic() - started, 0)
    data = _Counted(local_api.get_image(local_id, chunk_size=1 << 20))
    try:
        events = api.load_image(iter(data))
        for ev in events or []:
            if isinstance(ev, dict) and (ev.get("error") or ev.get("errorDetail")):
                raise DeviceError(device, "load", str(ev.get("error") or ev["errorDetail"].get("message")))
    except DeviceError:
        raise
    except Exception as exc:
        raise DeviceError(device, "load", f"{image}: stream cut after {data.bytes / 1e6:.0f} MB "
                                          f"({type(exc).__name__}: {exc}); nothing was tagged; {CUT_ADVICE}") from exc
    got = finish(api, device, device_image_id(api, local_id), local_id, tag)
    return TransferResult("ssh-stream", got, tag, time.monotonic() - started, data.bytes)


def push_local(registry: Any, local_api: Any, device: str, image: str, name: str) -> Any:
    """(registry, push, rung paths): `image` in the local registry (`registry`, or a function returning it started;
    once per image: LocalRegistry remembers); DeviceError(step='local registry') when it cannot start or push."""
    from edgebench.deploy.errors import DeployError

    try:
        registry = registry() if callable(registry) else registry
        pushed = registry.publish(local_api, image, name)
        return registry, pushed, registry.rungs(pushed)
    except DeployError as exc:   # the local registry did not start or took no push
        raise DeviceError(device, "local registry", str(exc)) from exc


def ssh_layers(local_api: Any, conn: Any, device: str, image: str, tag: str, registry: Any,
               name: str) -> TransferResult:
    """`deploy --via ssh`: this machine's `image` pushed into the local registry (`registry`: a started
    LocalRegistry, or a function that returns one), pulled by the device's engine by digest from its own
    127.0.0.1:<port>, forwarded over the device's SSH connection. Only layers the device lacks cross;
    `bytes_moved` counts what crossed the forward."""
    from edgebench.deploy.tunnel import ReverseForward

    local_id = local_api.inspect_image(image)["Id"]
    started = time.monotonic()
    if device_image_id(conn.api, local_id) == local_id:
        finish(conn.api, device, local_id, local_id, tag)
        return TransferResult("present", local_id, tag, time.monotonic() - started, 0)
    registry, pushed, rungs = push_local(registry, local_api, device, image, name)
    fwd = ReverseForward(conn.transport, registry.port)
    try:
        fwd.open()
    except Exception as exc:  # paramiko.SSHException: the device's sshd refused the forward
        raise DeviceError(device, "forward", f"the device's sshd refused a port forward to its 127.0.0.1 ({exc}): "
                                             f"allow it (`AllowTcpForwarding yes`, or `remote`, in its sshd_config) "
                                             f"or deploy with --via ssh-stream (the whole image, no forward)") from exc
    with fwd:
        try:
            pull_ladder(conn.api, device, fwd, rungs + [pushed["path"]])
        except DeviceError as exc:
            if not fwd.errors:
                raise
            # the forward took the engine's connection but could not reach the registry here: the engine saw EOF
            raise DeviceError(device, "pull", f"{exc.reason.split(': ', 1)[0]}: registry unreachable (the forward "
                                              f"could not reach this machine's local registry: {fwd.errors[0]}); it "
                                              f"stopped during the deploy (its log: {registry.log}): deploy again; "
                                              f"nothing was tagged") from exc
    got = finish(conn.api, device, device_image_id(conn.api, local_id), local_id, tag)
    drop_rungs(conn.api, got)
    return TransferResult("ssh-layers", got, tag, time.monotonic() - started, fwd.bytes_moved, pushed["digest"],
                          push=dict(pushed, rungs=len(rungs)))


def drop_rungs(api: Any, keep: str) -> int:
    """Remove the partial images (label RUNG_LABEL) on the device, this and earlier deploys' (a rung left by a cut
    of an older build): their layers stay with the images that use them. The number removed."""
    from edgebench.deploy.localregistry import RUNG_LABEL

    removed = 0
    try:
        ids = {img["Id"] for img in api.images(filters={"label": RUNG_LABEL})}
    except Exception:  # noqa: BLE001 - cleanup only
        return 0
    for image_id in sorted(ids - {keep}):
        try:
            api.remove_image(image_id, force=True)   # one reference per forwarded port it was pulled through
            removed += 1
        except Exception:  # noqa: BLE001 - in use by a container, or already gone
            pass
    return removed


def pull_ladder(api: Any, device: str, fwd: Any, paths: Any) -> None:
    """Pull each path (repo@sha256:..., without the address) from the device's 127.0.0.1:<forwarded port>, in
    order: the rungs (partial images, each kept once complete), then the image itself."""
    for path in paths:
        pull_events(api, device, f"127.0.0.1:{fwd.port}/{path}", cut_advice=FORWARD_CUT_ADVICE,
                    moved=lambda: fwd.bytes_moved, advice=FORWARD_ADVICE)


__all__ = ["TransferResult", "pull_by_digest", "stream", "ssh_layers", "pull_events", "pull_ladder", "drop_rungs",
           "push_local", "finish", "device_image_id", "explain_pull"]
