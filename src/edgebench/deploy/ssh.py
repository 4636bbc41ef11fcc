"""Reach a device the way its owner does: its Docker engine over SSH (docker SDK + paramiko).

The host key is always checked against known_hosts (the inventory's `known_hosts`, default
~/.ssh/known_hosts) with paramiko's RejectPolicy: an unknown or changed key is a `HostKeyError` that says
how to accept the key; nothing turns checking off. The identity file is the device's own (inventory),
not whatever ~/.ssh/config says for the host name, so two devices on one host with different ports and
keys work. The API version is fixed (no probing round trip).

`DeviceConnection` holds one SSH session: `.api` (docker APIClient through it), `.transport` (the paramiko
Transport, which `deploy --via ssh` forwards a port over) and `.exec(argv)` for the two host facts Docker does not
report (the L4T release file, free space on Docker's data root), run with
`shlex.join` quoting, never a hand-built shell string.
"""
from __future__ import annotations

import shlex
import socket
from typing import Any, List, Tuple

from edgebench.deploy.errors import DeviceError, HostKeyError
from edgebench.deploy.inventory import Device

CONNECT_TIMEOUT = 10.0


def accept_hint(device: Device, known_hosts: str) -> str:
    d = device.ssh
    return (f"after checking the key's fingerprint on the device itself (`ssh-keygen -lf "
            f"/etc/ssh/ssh_host_ed25519_key.pub` there), accept it with: "
            f"ssh-keyscan -p {d.port} {d.host} >> {known_hosts}")


def _adapter_class() -> Any:
    from docker.transport import SSHHTTPAdapter

    class DeviceSSHAdapter(SSHHTTPAdapter):
        """docker-py's paramiko adapter with this device's port, user, key and known_hosts."""

        def __init__(self, device: Device, known_hosts: str, timeout: int):
            self.device = device
            self.known_hosts = known_hosts
            super().__init__(device.ssh.url, timeout=timeout, pool_connections=4, max_pool_size=4)

        def get_connection(self, url: str, proxies: Any = None) -> Any:
            """One pool for the device, not one per API path: docker-py keys its pools by the request URL,
            so every new endpoint would start another `docker system dial-stdio` on the device (~0.3 s)."""
            return super().get_connection("http+docker://ssh/", proxies)

        def _create_paramiko_client(self, base_url: str) -> None:
            import paramiko

            d = self.device.ssh
            self.ssh_client = paramiko.SSHClient()
            self.ssh_params = {"hostname": d.host, "port": d.port, "username": d.user,
                               "timeout": CONNECT_TIMEOUT, "banner_timeout": CONNECT_TIMEOUT,
                               "auth_timeout": CONNECT_TIMEOUT}
            if d.identity_file:
                self.ssh_params.update(key_filename=d.identity_file, look_for_keys=False, allow_agent=False)
            try:
                self.ssh_client.load_host_keys(self.known_hosts)
            except FileNotFoundError:
                pass  # no known_hosts yet: every host key is unknown, and refused below
            self.ssh_client.set_missing_host_key_policy(paramiko.RejectPolicy())

    return DeviceSSHAdapter


def explain(device: Device, known_hosts: str, exc: BaseException, step: str = "connect") -> DeviceError:
    """A connection failure as a DeviceError with its cause in words."""
    import paramiko

    d = device.ssh
    where = f"{d.user}@{d.host}:{d.port}"
    if isinstance(exc, paramiko.BadHostKeyException):
        return HostKeyError(device.name, step,
                            f"the host key of {where} CHANGED (known_hosts {known_hosts} has another key for "
                            f"{d.known_hosts_name}): refused. If the device was reinstalled, remove the old key "
                            f"(`ssh-keygen -R '{d.known_hosts_name}' -f {known_hosts}`), then "
                            + accept_hint(device, known_hosts))
    if isinstance(exc, paramiko.SSHException) and "not found in known_hosts" in str(exc):
        return HostKeyError(device.name, step, f"the host key of {where} is unknown ({known_hosts} has no "
                                               f"{d.known_hosts_name}): refused; " + accept_hint(device, known_hosts))
    if isinstance(exc, paramiko.PasswordRequiredException) or (
            isinstance(exc, paramiko.SSHException) and "encrypted" in str(exc).lower()):
        key = d.identity_file or "a default key"
        return DeviceError(device.name, step, f"identity file {key} is encrypted (it has a passphrase), and deploy "
                                              f"asks for none: load it into ssh-agent (`ssh-add {key}`) and remove "
                                              f"identity_file from the inventory so the agent's keys are used, or "
                                              f"use a deploy key without a passphrase")
    if isinstance(exc, paramiko.AuthenticationException):
        key = d.identity_file or "the default keys / agent"
        return DeviceError(device.name, step, f"SSH login as {d.user} on {where} refused with {key}: {exc} "
                                              f"(is the public key in ~{d.user}/.ssh/authorized_keys on the device?)")
    if isinstance(exc, FileNotFoundError) and d.identity_file:
        return DeviceError(device.name, step, f"identity file {d.identity_file} not found")
    if isinstance(exc, (socket.timeout, TimeoutError)):
        return DeviceError(device.name, step, f"unreachable: no answer from {where} within {CONNECT_TIMEOUT:.0f} s")
    if isinstance(exc, (ConnectionRefusedError, paramiko.ssh_exception.NoValidConnectionsError)):
        return DeviceError(device.name, step, f"unreachable: connection to {where} refused (is sshd running?)")
    if isinstance(exc, OSError):
        return DeviceError(device.name, step, f"unreachable: {where}: {exc}")
    return DeviceError(device.name, step, f"{type(exc).__name__}: {exc}")


class DeviceConnection:
    """One SSH session to a device: `.api` (docker APIClient) and `.exec(argv)`. Use as a context manager."""

    def __init__(self, device: Device, known_hosts: str, timeout: int = 600):
        self.device = device
        self.known_hosts = known_hosts
        self.timeout = timeout
        self.adapter: Any = None
        self.api: Any = None

    def open(self) -> "DeviceConnection":
        import docker

        try:
            self.adapter = _adapter_class()(self.device, self.known_hosts, self.timeout)
        except Exception as exc:  # paramiko / socket errors, explained per cause
            raise explain(self.device, self.known_hosts, exc) from exc
        # A plain APIClient, then our adapter mounted where docker-py mounts its own ssh adapter.
        api = docker.APIClient(base_url="http+unix://%2Fnonexistent", version=self.device.docker_api,
                               timeout=self.timeout)
        api.mount("http+docker://ssh", self.adapter)
        api._custom_adapter = self.adapter  # noqa: SLF001 - docker-py's own attribute for raw sockets
        api.base_url = "http+docker://ssh"
        self.api = api
        try:
            api.ping()
        except Exception as exc:
            self.close()
            raise DeviceError(self.device.name, "connect", f"SSH works but the Docker engine does not answer: "
                                                           f"{exc} (is dockerd running, and may "
                                                           f"{self.device.ssh.user} use its socket?)") from exc
        return self

    def exec(self, argv: List[str], timeout: float = 30.0) -> Tuple[int, str, str]:
        """Run one command (argv, quoted with shlex.join) on the device: (exit status, stdout, stderr)."""
        client = self.adapter.ssh_client
        try:
            _, out, err = client.exec_command(shlex.join(argv), timeout=timeout)
            stdout = out.read().decode("utf-8", "replace")
            stderr = err.read().decode("utf-8", "replace")
            return out.channel.recv_exit_status(), stdout, stderr
        except Exception as exc:
            raise DeviceError(self.device.name, "ssh exec", f"{shlex.join(argv)}: {exc}") from exc

    @property
    def transport(self) -> Any:
        """The session's paramiko Transport (the same host-key-checked connection), e.g. for a port forward."""
        transport = self.adapter.ssh_client.get_transport() if self.adapter is not None else None
        if transport is None or not transport.is_active():
            raise DeviceError(self.device.name, "ssh", "the SSH connection is closed")
        return transport

    def close(self) -> None:
        for thing in (self.api, self.adapter):
            try:
                if thing is not None:
                    thing.close()
            except Exception:  # noqa: BLE001 - closing a dead connection
                pass

    def __enter__(self) -> "DeviceConnection":
        return self.open() if self.api is None else self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def connect(device: Device, known_hosts: str, timeout: int = 600) -> DeviceConnection:
    return DeviceConnection(device, known_hosts, timeout).open()


__all__ = ["DeviceConnection", "connect", "explain", "accept_hint"]
