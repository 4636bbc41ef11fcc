"""Put an image on a device: pulled from the registry by digest, or streamed from this machine's engine.

- `pull_by_digest`: the device's engine pulls `repo@sha256:...` (layers it already has are not moved).
- `stream`: `docker save` of the image *id* on this machine, chunk by chunk into the device's `docker load`
  over the SSH connection; no file on either side.

Either way the image is checked (its id must equal the expected one) before the kit's usual tag
(`edgebench:<version>-<target>`) is set on the device, so a transfer cut midway leaves nothing tagged.
What a cut keeps (measured on the deploy rig, Docker 20.10 / 24): nothing. After a pull cut midway, and after
a `docker load` cut midway, the device's store was empty again, so the next deploy moves the whole image.
Each failure says which of these happened (`explain_pull`): the registry unreachable, the digest not in the
registry, the registry refusing the credentials, or the transfer cut; each with its own advice.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Dict, Iterator, Optional

from edgebench.deploy.errors import DeviceError


@dataclass
class TransferResult:
    method: str          # registry | ssh-stream | present
    image_id: str
    tag: str
    seconds: float
    bytes_moved: int
    digest: Optional[str] = None

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
CUT_ADVICE = ("run deploy again: the engine kept nothing of the cut transfer (measured: the device's store was "
              "empty afterwards), so it moves the whole image again")


def explain_pull(ref: str, message: str) -> str:
    """The engine's pull error as what happened + what to do (one line)."""
    low = message.lower()
    for kind, words, advice in PULL_FAILURES:
        if any(w in low for w in words):
            return f"{ref}: {kind} ({message.strip()}); {advice}"
    return f"{ref}: the pull failed ({message.strip()}); nothing was tagged"


def pull_by_digest(api: Any, device: str, ref: str, tag: str, expected_id: Optional[str] = None) -> TransferResult:
    """`ref` = repo@sha256:...; pulled by the device's engine, verified, then tagged `tag`."""
    if "@sha256:" not in ref:
        raise DeviceError(device, "pull", f"{ref} is not pinned by digest (repo@sha256:...)")
    started = time.monotonic()
    present = device_image_id(api, ref)
    if present and (not expected_id or present == expected_id):
        finish(api, device, present, expected_id, tag)
        return TransferResult("present", present, tag, time.monotonic() - started, 0, ref.split("@", 1)[1])
    repo, digest = ref.split("@", 1)
    totals: Dict[str, int] = {}
    try:
        for ev in api.pull(repo, tag=digest, stream=True, decode=True):
            if ev.get("error") or ev.get("errorDetail"):
                msg = str(ev.get("error") or (ev.get("errorDetail") or {}).get("message"))
                raise DeviceError(device, "pull", explain_pull(ref, msg))
            if ev.get("status") == "Downloading" and ev.get("id"):
                total = (ev.get("progressDetail") or {}).get("total")
                if total:
                    totals[ev["id"]] = int(total)
    except DeviceError:
        raise
    except Exception as exc:
        from docker.errors import APIError

        if isinstance(exc, APIError):   # the engine answered: the request itself failed (registry, digest, auth)
            raise DeviceError(device, "pull", explain_pull(ref, str(exc.explanation or exc))) from exc
        # the engine or the SSH connection went away midway
        raise DeviceError(device, "pull", f"{ref}: transfer cut after {sum(totals.values()) / 1e6:.0f} MB announced "
                                          f"({type(exc).__name__}: {exc}); nothing was tagged; {CUT_ADVICE}") from exc
    got = finish(api, device, device_image_id(api, ref), expected_id, tag)
    return TransferResult("registry", got, tag, time.monotonic() - started, sum(totals.values()), digest)


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


__all__ = ["TransferResult", "pull_by_digest", "stream", "finish", "device_image_id", "explain_pull"]
