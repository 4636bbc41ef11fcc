"""`deploy --via ssh` pieces without the rig: the reverse forward (a fake paramiko transport whose channels are
socket pairs), the local registry's port and process handling (Debian's docker-registry when installed), and
ssh_layers' refusals and messages (fake engine API)."""
from __future__ import annotations

import socket
import threading
import time
import urllib.request

import pytest

from edgebench.deploy import fleet, localregistry, transfer
from edgebench.deploy.errors import DeviceError
from edgebench.deploy.tunnel import ReverseForward


class FakeTransport:
    """paramiko.Transport's forward API: request_port_forward(addr, 0, handler) -> port; `connect()` plays the
    device's engine opening a connection to the forwarded port (a channel = one end of a socket pair)."""

    def __init__(self, refuse=False):
        self.refuse, self.handler, self.cancelled = refuse, None, []

    def request_port_forward(self, address, port, handler=None):
        if self.refuse:
            raise OSError("TCP forwarding request denied")
        assert (address, port) == ("127.0.0.1", 0)
        self.handler = handler
        return 40123

    def cancel_port_forward(self, address, port):
        self.cancelled.append((address, port))

    def is_active(self):
        return True

    def connect(self):
        device_end, channel = socket.socketpair()
        self.handler(channel, ("127.0.0.1", 5555), ("127.0.0.1", 40123))
        return device_end


@pytest.fixture
def echo_server():
    """A TCP server on this machine's loopback that answers each request with 3x its bytes."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen()

    def serve():
        while True:
            try:
                conn, _ = srv.accept()
            except OSError:
                return
            with conn:
                data = conn.recv(1 << 16)
                conn.sendall(data * 3)

    threading.Thread(target=serve, daemon=True).start()
    yield srv.getsockname()[1]
    srv.close()


def _recv_all(sock, n, timeout=5.0):
    sock.settimeout(timeout)
    got = b""
    while len(got) < n:
        chunk = sock.recv(n - len(got))
        if not chunk:
            break
        got += chunk
    return got


def test_forward_pipes_both_ways_and_counts_the_bytes(echo_server):
    t = FakeTransport()
    with ReverseForward(t, echo_server) as fwd:
        assert fwd.port == 40123
        for payload in (b"GET /v2/ HTTP/1.1\r\n\r\n", b"x" * 5000):
            dev = t.connect()
            dev.sendall(payload)
            assert _recv_all(dev, 3 * len(payload)) == payload * 3
            dev.close()
        deadline = time.monotonic() + 5
        while fwd.bytes_moved < 4 * (21 + 5000) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert (fwd.bytes_up, fwd.bytes_down) == (21 + 5000, 3 * (21 + 5000))
        assert fwd.connections == 2 and fwd.errors == []
    assert t.cancelled == [("127.0.0.1", 40123)]


def test_forward_to_a_closed_port_records_why_and_closes_the_channel():
    t = FakeTransport()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = s.getsockname()[1]
    with ReverseForward(t, dead) as fwd:
        dev = t.connect()
        assert _recv_all(dev, 1) == b""      # the device sees the connection closed
        deadline = time.monotonic() + 5
        while not fwd.errors and time.monotonic() < deadline:
            time.sleep(0.01)
        assert fwd.errors and f"127.0.0.1:{dead}" in fwd.errors[0] and fwd.bytes_moved == 0


def test_pick_port_reuses_a_free_saved_port_and_replaces_a_busy_one():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        busy = s.getsockname()[1]
        new = localregistry.pick_port(busy)
        assert new != busy and localregistry.port_free(new)
    assert localregistry.pick_port(busy) == busy   # free again
    assert localregistry.pick_port(None) > 0


def test_missing_registry_binary_names_the_package_and_the_stream(monkeypatch):
    monkeypatch.setenv(localregistry.REGISTRY_BIN_ENV, "/nonexistent/docker-registry")
    monkeypatch.setattr(localregistry.shutil, "which", lambda name: None)
    with pytest.raises(localregistry.LocalRegistryError, match="apt-get install docker-registry.*ssh-stream"):
        localregistry.registry_binary()


def test_a_registry_that_dies_at_start_is_an_error_with_its_log(monkeypatch, tmp_path):
    fake = tmp_path / "docker-registry"
    fake.write_text("#!/bin/sh\necho 'configuration error: nope' >&2\nexit 1\n")
    fake.chmod(0o755)
    monkeypatch.setenv(localregistry.REGISTRY_BIN_ENV, str(fake))
    reg = localregistry.LocalRegistry(tmp_path / "store")
    with pytest.raises(localregistry.LocalRegistryError, match="configuration error: nope"):
        reg.start()
    assert reg.proc is None and reg._lock_file is None   # stopped, lock released


@pytest.mark.skipif(not localregistry.os.access(localregistry.REGISTRY_BIN, localregistry.os.X_OK),
                    reason="Debian's docker-registry is not installed")
def test_real_registry_serves_v2_keeps_its_port_and_one_user_at_a_time(tmp_path):
    root = tmp_path / "cache"
    with localregistry.LocalRegistry(root) as reg:
        with urllib.request.urlopen(f"http://{reg.address}/v2/", timeout=5) as r:
            assert r.status == 200
        first = reg.port
        assert (root / "port").read_text().strip() == str(first)
        assert f"127.0.0.1:{first}" in (root / "config.yml").read_text()
        # a second deploy on the same store waits for the lock
        other = localregistry.LocalRegistry(root)
        started = threading.Event()
        threading.Thread(target=lambda: (other.start(), started.set()), daemon=True).start()
        assert not started.wait(1.0), "a second registry on the same store must wait"
    assert started.wait(20), "the lock is released when the first one stops"
    try:
        assert other.port == first, "the saved port is reused (the engine's push memory is per address)"
    finally:
        other.stop()


@pytest.mark.skipif(not localregistry.os.access(localregistry.REGISTRY_BIN, localregistry.os.X_OK),
                    reason="Debian's docker-registry is not installed")
def test_rungs_are_prefixes_of_the_image_a_rung_per_size_step(tmp_path):
    import hashlib
    import json

    def sha(b):
        return "sha256:" + hashlib.sha256(b).hexdigest()

    layers = [bytes([i]) * n for i, n in enumerate((300, 50, 60, 400, 10))]
    with localregistry.LocalRegistry(tmp_path / "c") as reg:
        name = "edgebench-deploy/x86-cpu"
        for b in layers:
            reg._put_blob(name, b)
        config = {"architecture": "amd64", "os": "linux", "config": {"Labels": {"a": "b"}},
                  "rootfs": {"type": "layers", "diff_ids": [f"sha256:{i:064x}" for i in range(5)]},
                  "history": [{"created_by": "x"}] * 5}
        cblob = json.dumps(config).encode()
        reg._put_blob(name, cblob)
        manifest = json.dumps({"schemaVersion": 2, "mediaType": localregistry.MANIFEST_V2,
                               "config": {"mediaType": "application/vnd.docker.container.image.v1+json",
                                          "size": len(cblob), "digest": sha(cblob)},
                               "layers": [{"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip",
                                           "size": len(b), "digest": sha(b)} for b in layers]}).encode()
        reg._request("PUT", f"/v2/{name}/manifests/{sha(manifest)}", manifest, localregistry.MANIFEST_V2)
        pushed = {"path": f"{name}@{sha(manifest)}", "digest": sha(manifest)}
        paths = reg.rungs(pushed, every=100)
        # a rung once 100 B more: after layer 1 (300 B), 3 (50 + 60), 4 (400); never the whole image
        assert len(paths) == 3 and reg.rungs(pushed, every=100) == paths
        for path, k in zip(paths, (1, 3, 4)):
            digest = path.split("@")[1]
            got = reg._get(f"/v2/{name}/manifests/{digest}", localregistry.MANIFEST_V2)
            assert sha(got) == digest
            m = json.loads(got)
            assert [layer["digest"] for layer in m["layers"]] == [sha(b) for b in layers[:k]]
            c = json.loads(reg._get(f"/v2/{name}/blobs/{m['config']['digest']}", "*/*"))
            assert c["rootfs"]["diff_ids"] == config["rootfs"]["diff_ids"][:k] and "history" not in c
            assert c["config"]["Labels"] == {"a": "b", localregistry.RUNG_LABEL: str(k)}
        assert reg.rungs(pushed, every=10_000) == [], "an image smaller than one step gets no rung"


class FakeApi:
    """The device's engine: images by id, pull events or an exception."""

    def __init__(self, images=(), pull=None):
        self.have, self.pull_script, self.tags, self.pulled = set(images), pull, [], []
        self.rung_ids, self.removed = set(), []

    def inspect_image(self, ref):
        from docker.errors import ImageNotFound

        if ref in self.have or ref.split("@")[0] in self.have:
            return {"Id": ID}
        raise ImageNotFound(ref)

    def tag(self, image, repository, tag):
        self.tags.append((image, repository, tag))

    def images(self, filters=None):
        assert filters == {"label": localregistry.RUNG_LABEL}
        return [{"Id": i} for i in sorted(self.rung_ids)]

    def remove_image(self, image, force=False):
        assert force, "a rung has one reference per port it came through: removing it needs force"
        self.rung_ids.discard(image)
        self.removed.append(image)

    def pull(self, repo, tag, stream, decode):
        self.pulled.append(f"{repo}@{tag}")
        for ev in self.pull_script:
            if isinstance(ev, BaseException):
                raise ev
            yield ev


ID = "sha256:" + "c" * 64
DIGEST = "sha256:" + "d" * 64


class FakeRegistry:
    port = 5999

    def __init__(self, fail=None, rungs=()):
        self.fail, self.calls, self._rungs = fail, 0, list(rungs)

    def rungs(self, pushed):
        return list(self._rungs)

    def publish(self, api, image, name):
        self.calls += 1
        if self.fail:
            raise self.fail
        return {"digest": DIGEST, "path": f"edgebench-deploy/{name}@{DIGEST}", "seconds": 0.1, "bytes": 0}


class Conn:
    def __init__(self, api, transport):
        self.api, self.transport = api, transport


LOCAL = FakeApi(images=["img"])


def test_ssh_layers_on_a_device_that_has_the_image_pushes_nothing():
    reg = FakeRegistry()
    res = transfer.ssh_layers(LOCAL, Conn(FakeApi(images=[ID]), FakeTransport()), "d", "img", "edgebench:1-x", reg, "x")
    assert (res.method, res.bytes_moved, reg.calls) == ("present", 0, 0)


def test_ssh_layers_refused_forward_says_what_to_allow():
    conn = Conn(FakeApi(), FakeTransport(refuse=True))
    with pytest.raises(DeviceError) as e:
        transfer.ssh_layers(LOCAL, conn, "d", "img", "edgebench:1-x", FakeRegistry(), "x")
    assert e.value.step == "forward" and "AllowTcpForwarding" in e.value.reason and "ssh-stream" in e.value.reason


def test_ssh_layers_local_registry_failure_is_its_own_step():
    fail = localregistry.LocalRegistryError("the local registry (/c) took no push: disk full")
    with pytest.raises(DeviceError) as e:
        transfer.ssh_layers(LOCAL, Conn(FakeApi(), FakeTransport()), "d", "img", "t", FakeRegistry(fail), "x")
    assert e.value.step == "local registry" and "disk full" in e.value.reason


@pytest.mark.parametrize("message,kind,advice", [
    ("Get http://127.0.0.1:40123/v2/: dial tcp 127.0.0.1:40123: connect: connection refused",
     "registry unreachable", "the SSH port forward on the device"),
    ("manifest for 127.0.0.1:40123/edgebench-deploy/x@sha256:dd not found: manifest unknown",
     "digest not in the registry", "local registry lost the image"),
    ("unauthorized: authentication required", "credentials refused", "docker login"),
])
def test_ssh_layers_pull_failures_keep_their_own_words(message, kind, advice):
    api = FakeApi(pull=[{"status": "Pulling from edgebench-deploy/x"}, {"error": message}])
    t = FakeTransport()
    with pytest.raises(DeviceError) as e:
        transfer.ssh_layers(LOCAL, Conn(api, t), "d", "img", "t", FakeRegistry(), "x")
    assert e.value.step == "pull" and f": {kind} (" in e.value.reason and advice in e.value.reason
    assert api.pulled == [f"127.0.0.1:40123/edgebench-deploy/x@{DIGEST}"], "pulled from the device's own loopback"
    assert t.cancelled == [("127.0.0.1", 40123)], "the forward is closed after a failure too"
    assert api.tags == []


def test_ssh_layers_local_registry_gone_is_unreachable_though_the_engine_saw_only_eof():
    class Eof(FakeApi):
        """The engine's view when sshd took its connection and the kit's side could not reach the registry."""

        def pull(self, repo, tag, stream, decode):
            dev = self.transport.connect()
            assert dev.recv(1) == b""   # the forward closed it: what the engine reports as EOF
            yield {"error": 'Get "http://127.0.0.1:40123/v2/": EOF'}

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = s.getsockname()[1]
    api, t = Eof(), FakeTransport()
    api.transport = t
    reg = FakeRegistry()
    reg.port, reg.log = dead, "/c/registry.log"
    with pytest.raises(DeviceError) as e:
        transfer.ssh_layers(LOCAL, Conn(api, t), "d", "img", "t", reg, "x")
    r = e.value.reason
    assert "registry unreachable" in r and f"127.0.0.1:{dead}" in r and "/c/registry.log" in r, r
    assert "the pull failed" not in r and api.tags == []


def test_ssh_layers_cut_names_what_moved_and_what_a_rerun_sends():
    import urllib3

    api = FakeApi(pull=[{"status": "Downloading", "id": "l1", "progressDetail": {"total": 10}},
                        urllib3.exceptions.ProtocolError("Connection broken: IncompleteRead(0 bytes read)")])
    with pytest.raises(DeviceError) as e:
        transfer.ssh_layers(LOCAL, Conn(api, FakeTransport()), "d", "img", "t", FakeRegistry(), "x")
    r = e.value.reason
    assert "transfer cut after 0 MB moved" in r and "nothing was tagged" in r and "keeps each partial image" in r
    assert "registry unreachable" not in r and api.tags == []


def test_ssh_layers_success_tags_only_the_verified_id():
    class Landing(FakeApi):
        def pull(self, repo, tag, stream, decode):
            yield from super().pull(repo, tag, stream, decode)
            self.have.add(ID)

    api = Landing(pull=[{"status": "Downloading", "id": "l1", "progressDetail": {"total": 10}}])
    api.rung_ids = {"sha256:old-rung", "sha256:rung1"}
    reg = FakeRegistry(rungs=["edgebench-deploy/x@sha256:r1", "edgebench-deploy/x@sha256:r2"])
    res = transfer.ssh_layers(LOCAL, Conn(api, FakeTransport()), "d", "img", "edgebench:1-x", reg, "x")
    assert (res.method, res.image_id, res.digest) == ("ssh-layers", ID, DIGEST)
    assert api.tags == [(ID, "edgebench", "1-x")] and res.push["seconds"] == 0.1 and res.push["rungs"] == 2
    at = "127.0.0.1:40123/edgebench-deploy/x@"
    assert api.pulled == [at + "sha256:r1", at + "sha256:r2", at + DIGEST], "the rungs in order, then the image"
    assert sorted(api.removed) == ["sha256:old-rung", "sha256:rung1"], "every partial image is removed after"


def test_via_names_both_ssh_paths():
    assert fleet.check_via("ssh") == "ssh" and fleet.check_via("ssh-stream") == "ssh-stream"
    with pytest.raises(fleet.DeployError, match="ssh, ssh-stream"):
        fleet.check_via("ssh-layers")
