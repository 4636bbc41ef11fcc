"""`deploy --via ssh` on the real rig: this machine's engine pushes into a real local registry (Debian's
docker-registry, its store in a temporary cache folder), the fake device's engine pulls by digest from its own
127.0.0.1:<port>, forwarded over the device's SSH connection (host key checked). Small images, so each case
costs seconds: first deploy, a redeploy after a small change (only the new layer crosses), the stream fallback,
the failures in their own words (registry gone, unknown digest), and a transfer cut midway (SSH connection closed
during the pull): nothing tagged, and what the rerun sends.
"""
from __future__ import annotations

import subprocess
import threading
import time

import pytest

from edgebench.deploy import fleet, inventory, localregistry, transfer, tunnel
from edgebench.deploy.errors import DeviceError
from edgebench.deploy.localregistry import LocalRegistry
from edgebench.deploy.ssh import connect

pytestmark = [pytest.mark.deploy, pytest.mark.docker]
TAG = fleet.kit_tag("x86-cpu")
IMAGES = {  # tag: Dockerfile
    "edgebench-test/ssh-layers:base": "FROM debian:bookworm-slim\nLABEL io.edgebench.test=ssh-layers\n"
                                      "RUN head -c 20000000 /dev/urandom > /blob\n",
    "edgebench-test/ssh-layers:small-change": "FROM edgebench-test/ssh-layers:base\nRUN echo change-1 > /src.txt\n",
    "edgebench-test/ssh-layers:two-new": "FROM edgebench-test/ssh-layers:base\n"
                                         "RUN head -c 12000000 /dev/urandom > /n1\n"
                                         "RUN head -c 12000000 /dev/urandom > /n2\n",
}
BASE, SMALL, TWO = IMAGES


@pytest.fixture(scope="module")
def local_api():
    from edgebench.docker.client import api_client

    return api_client()


@pytest.fixture(scope="module")
def images(local_api, tmp_path_factory):
    for tag, dockerfile in IMAGES.items():
        d = tmp_path_factory.mktemp("img")
        (d / "Dockerfile").write_text(dockerfile)
        subprocess.run(["docker", "build", "-q", "-t", tag, str(d)], check=True, capture_output=True)
    yield {tag: local_api.inspect_image(tag)["Id"] for tag in IMAGES}
    subprocess.run(["docker", "rmi", "-f", *IMAGES], capture_output=True)


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return tmp_path_factory.mktemp("deploy-registry")


@pytest.fixture
def inv(rig, tmp_path):
    return inventory.load(rig.inventory(tmp_path / "devices.yaml", registry=False))


def _empty(dev):
    ids = dev.docker("images", "-aq").stdout.split()
    if ids:
        dev.docker("rmi", "-f", *sorted(set(ids)))


def _ids(dev):
    return set(dev.docker("images", "-aq", "--no-trunc").stdout.split())


def _deploy(inv, dev, image, store, via="ssh"):
    out = fleet.deploy(inv, dev.name, image=image, via=via, registry_root=store)[0]
    assert out.status == "ok", fleet.summary([out], "deploy")
    return out.details


def test_first_deploy_then_a_small_change_moves_only_the_new_layer(rig, inv, images, store):
    dev = rig.devices[0]
    _empty(dev)
    first = _deploy(inv, dev, BASE, store)
    assert first["method"] == "ssh-layers" and first["image_id"] == images[BASE]
    assert first["bytes"] > 20e6, "the device had nothing: every layer crossed the forward"
    assert dev.docker("image", "inspect", "-f", "{{.Id}}", TAG).stdout.strip() == images[BASE]
    again = _deploy(inv, dev, BASE, store)
    assert (again["method"], again["bytes"]) == ("present", 0)
    change = _deploy(inv, dev, SMALL, store)
    assert change["method"] == "ssh-layers" and change["image_id"] == images[SMALL]
    assert 0 < change["bytes"] < 200_000, "only the new layer, its config and the manifest cross"
    assert change["push"]["existing"] >= 2 and change["push"]["pushed"] == 1, change["push"]
    assert dev.docker("image", "inspect", "-f", "{{.Id}}", TAG).stdout.strip() == images[SMALL]


def test_stream_fallback_sends_the_whole_image_and_the_next_layers_deploy_all_layers(rig, inv, images, store):
    dev = rig.devices[1]
    _empty(dev)
    out = _deploy(inv, dev, BASE, store, via="ssh-stream")
    assert out["method"] == "ssh-stream" and out["image_id"] == images[BASE] and out["bytes"] > 20e6
    # a device that got its layers by `docker load` has no record of their registry digests, so its first pull
    # asks for every layer again (moby's pull skips a layer only when it knows the blob digest's diff id)
    after = _deploy(inv, dev, SMALL, store)
    assert after["method"] == "ssh-layers" and after["bytes"] > 20e6, after
    again = _deploy(inv, dev, SMALL, store)
    assert again["method"] == "present"


class _Gone:
    """A started registry that stops before the device pulls (the registry unreachable through the forward)."""

    def __init__(self, reg, path=None):
        self.reg, self.path = reg, path
        self.port, self.log = reg.port, reg.log

    def rungs(self, pushed):
        return []

    def publish(self, api, image, name):
        out = dict(self.reg.publish(api, image, name))
        if self.path:
            out["path"] = self.path
        else:
            self.reg.stop()
        return out


def test_registry_gone_and_unknown_digest_keep_their_own_words(rig, inv, images, store, local_api):
    dev = rig.devices[1]
    _empty(dev)
    with connect(inv.devices[1], str(rig.known_hosts)) as conn:
        reg = LocalRegistry(store).start()
        try:
            bad = "edgebench-deploy/x86-cpu@sha256:" + "0" * 64
            with pytest.raises(DeviceError) as e:
                transfer.ssh_layers(local_api, conn, dev.name, BASE, TAG, _Gone(reg, bad), "x86-cpu")
            assert "digest not in the registry" in e.value.reason and "local registry lost the image" in e.value.reason
            with pytest.raises(DeviceError) as e:
                transfer.ssh_layers(local_api, conn, dev.name, BASE, TAG, _Gone(reg), "x86-cpu")
            # the engine itself sees only EOF (sshd took its connection); the forward knows why
            assert "registry unreachable" in e.value.reason and "local registry" in e.value.reason
            assert f"127.0.0.1:{reg.port}" in e.value.reason and "deploy again" in e.value.reason
        finally:
            reg.stop()
    assert dev.docker("image", "inspect", TAG).returncode != 0, "nothing tagged"


def test_cut_midway_tags_nothing_and_the_rerun_sends_only_from_the_rung_in_progress(rig, inv, images, store,
                                                                                   monkeypatch):
    dev = rig.devices[0]
    _empty(dev)
    _deploy(inv, dev, BASE, store)
    before = _ids(dev)
    # a rung (partial image) after every 10 MB of layers: TWO = BASE's layers, then 12 MB (a rung), then 12 MB
    monkeypatch.setattr(localregistry, "RUNG_BYTES", 10_000_000)

    class Cutting(tunnel.ReverseForward):
        """Closes the whole SSH connection (API and forward) once 18 MB reached the device: a dropped link, in
        the last layer (the first new one is complete, and its rung with it)."""

        def pipe(self, channel, sock):
            def watch():
                while not self._closed and self.bytes_down <= 18_000_000:
                    time.sleep(0.005)
                self.transport.close()

            threading.Thread(target=watch, daemon=True).start()
            return super().pipe(channel, sock)

    monkeypatch.setattr(tunnel, "ReverseForward", Cutting)
    cut = fleet.deploy(inv, dev.name, image=TWO, via="ssh", registry_root=store)[0]
    monkeypatch.setattr(tunnel, "ReverseForward", Cutting.__mro__[1])
    assert cut.status == "failed" and cut.step == "pull" and "transfer cut after" in cut.reason, cut.reason
    assert "nothing was tagged" in cut.reason and "registry unreachable" not in cut.reason
    assert dev.docker("image", "inspect", "-f", "{{.Id}}", TAG).stdout.strip() == images[BASE], "old tag kept"
    kept = _ids(dev) - before
    assert len(kept) >= 1 and images[TWO] not in kept, "complete rungs stay, the cut image does not"
    rerun = _deploy(inv, dev, TWO, store)
    assert rerun["image_id"] == images[TWO] and rerun["push"]["rungs"] >= 1
    # only the last 12 MB layer crosses again: the first one came with its rung before the cut, and the engine
    # dropped the part of the last that had arrived (measured on Docker 20.10)
    assert 12e6 < rerun["bytes"] < 14e6, rerun
    assert _ids(dev) - before == {images[TWO]}, "the rungs are removed once the image is there"
