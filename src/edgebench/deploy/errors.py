"""Errors of the deploy family: each names the file / device / step it is about."""
from __future__ import annotations

from edgebench.errors import EdgebenchError


class DeployError(EdgebenchError, RuntimeError):
    """Base of every deploy-family error."""


class InventoryError(DeployError, ValueError):
    """A bad devices.yaml: names the file, the device and the key."""

    def __init__(self, path: object, message: str, *, device: str = "", key: str = ""):
        self.path = str(path)
        self.device = device
        self.key = key
        where = self.path + (f": device {device!r}" if device else "") + (f": key {key!r}" if key else "")
        super().__init__(f"{where}: {message}")


class DeviceError(DeployError):
    """One device failed a step (connect, preflight, transfer, run): the fleet goes on with the others."""

    def __init__(self, device: str, step: str, reason: str):
        self.device = device
        self.step = step
        self.reason = reason
        super().__init__(f"device {device}: {step}: {reason}")


class HostKeyError(DeviceError):
    """The device's SSH host key is unknown or changed; the message says how to accept it."""


class PublishError(DeployError):
    """The image cannot be published (build-machine files in a layer, registry refused the push, ...)."""
