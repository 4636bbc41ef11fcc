"""A reverse port forward over the device's own SSH connection: its 127.0.0.1:<port> -> a port on this machine.

`ReverseForward(transport, 5000)` asks the device's sshd for a listening port on the device's loopback
(`tcpip-forward`, port 0: sshd picks a free one; paramiko's `Transport.request_port_forward`). Each connection
the device makes to it arrives here as a `forwarded-tcpip` channel, which a thread pipes to 127.0.0.1:<target> on
this machine. The bytes each way are counted here, so a deploy reports what really crossed the SSH link.

The same SSH session (host key checked, see `deploy/ssh.py`) carries the Docker API and the forward; nothing
listens on a non-loopback address on either side (sshd binds the forward to 127.0.0.1 unless its GatewayPorts
says otherwise; we ask for 127.0.0.1).
"""
from __future__ import annotations

import select
import socket
import threading
from typing import Any, List, Tuple

CHUNK = 1 << 20


class ReverseForward:
    """Context manager; `.port` (on the device), `.bytes_down` (to the device), `.bytes_up`, `.connections`."""

    def __init__(self, transport: Any, target_port: int, target_host: str = "127.0.0.1", bind: str = "127.0.0.1"):
        self.transport = transport
        self.target = (target_host, int(target_port))
        self.bind = bind
        self.port = 0
        self.bytes_down = 0
        self.bytes_up = 0
        self.connections = 0
        self.errors: List[str] = []
        self._lock = threading.Lock()
        self._open: List[Tuple[Any, Any]] = []
        self._closed = False

    def open(self) -> "ReverseForward":
        self.port = int(self.transport.request_port_forward(self.bind, 0, handler=self._handler))
        return self

    def _handler(self, channel: Any, origin: Any, server: Any) -> None:
        """Called on paramiko's transport thread: must not block, so each connection gets its own thread."""
        threading.Thread(target=self._serve, args=(channel,), daemon=True, name="edgebench-forward").start()

    def _serve(self, channel: Any) -> None:
        try:
            sock = socket.create_connection(self.target, timeout=10)
        except OSError as exc:
            with self._lock:
                self.errors.append(f"{self.target[0]}:{self.target[1]}: {exc}")
            channel.close()
            return
        sock.settimeout(None)
        with self._lock:
            self.connections += 1
            self._open.append((channel, sock))
        try:
            self.pipe(channel, sock)
        except (OSError, EOFError) as exc:
            # the registry's side failing is "unreachable"; the SSH link itself going down is a cut, which
            # the pull reports as such (a dead transport makes the channel raise EOFError here too)
            link_up = self.transport.is_active()
            with self._lock:
                if not self._closed and link_up:
                    self.errors.append(f"{type(exc).__name__}: {exc}")
        finally:
            for end in (sock, channel):
                try:
                    end.close()
                except Exception:  # noqa: BLE001 - closing a dead end
                    pass

    def pipe(self, channel: Any, sock: Any) -> None:
        """Copy both ways until either side closes; count the bytes."""
        while True:
            ready, _, _ = select.select([channel, sock], [], [], 30.0)
            if self._closed:
                return
            if sock in ready:
                data = sock.recv(CHUNK)
                if not data:
                    return
                channel.sendall(data)
                with self._lock:
                    self.bytes_down += len(data)
            if channel in ready:
                data = channel.recv(CHUNK)
                if not data:
                    return
                sock.sendall(data)
                with self._lock:
                    self.bytes_up += len(data)

    @property
    def bytes_moved(self) -> int:
        with self._lock:
            return self.bytes_down + self.bytes_up

    def close(self) -> None:
        with self._lock:
            self._closed = True
            ends = list(self._open)
        try:
            if self.port:
                self.transport.cancel_port_forward(self.bind, self.port)
        except Exception:  # noqa: BLE001 - the connection is already gone
            pass
        for channel, sock in ends:
            for end in (sock, channel):
                try:
                    end.close()
                except Exception:  # noqa: BLE001
                    pass

    def __enter__(self) -> "ReverseForward":
        return self.open() if not self.port else self

    def __exit__(self, *exc: Any) -> None:
        self.close()


__all__ = ["ReverseForward"]
