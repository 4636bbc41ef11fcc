"""Deploy faults on the real rig (Debian's registry, two fake devices = dockerd behind sshd on loopback), with a
tiny image so each fault costs seconds: unreachable device, wrong SSH key, unknown / changed host key, wrong L4T,
wrong architecture, too little disk, a read-only registry refusing the push, a transfer cut midway (device
engine killed during `docker load` and during a pull). Each is a clear error for that device; the others go on.
"""
from __future__ import annotations

import subprocess

import deploy_rig  # tests/plugins/deploy_rig.py (on sys.path through tests/conftest.py)
import pytest

from edgebench.deploy import fleet, inventory, publish, transfer
from edgebench.deploy.errors import DeviceError, PublishError
from edgebench.deploy.ssh import connect

pytestmark = [pytest.mark.deploy, pytest.mark.docker]
TAG = fleet.kit_tag("x86-cpu")


@pytest.fixture(scope="module")
def local_api():
    from edgebench.docker.client import api_client

    return api_client()


@pytest.fixture(scope="module")
def tiny(local_api, tmp_path_factory):
    """A small image with a few layers (debian:bookworm-slim + 24 MB of random data)."""
    d = tmp_path_factory.mktemp("tiny")
    (d / "Dockerfile").write_text("FROM debian:bookworm-slim\nLABEL io.edgebench.test=deploy\n"
                                  "RUN head -c 24000000 /dev/urandom > /blob\n")
    tag = "edgebench-test/deploy-tiny:1"
    subprocess.run(["docker", "build", "-q", "-t", tag, str(d)], check=True, capture_output=True)
    yield tag
    subprocess.run(["docker", "rmi", "-f", tag], capture_output=True)


@pytest.fixture(scope="module")
def published(rig, tiny, local_api, tmp_path_factory):
    lock = tmp_path_factory.mktemp("lock") / "images.lock.json"
    res = publish.publish("x86-cpu", f"{rig.registry.address}/edgebench", image=tiny, api=local_api, lock=lock)
    yield res, lock
    for ref in (f"{res.entry.repo}:{TAG.split(':', 1)[1]}", res.entry.ref):  # the pushed tag and digest
        try:  # removing the last tag of a repo drops its digest too
            local_api.remove_image(ref, noprune=True)
        except Exception:
            pass


def _inv(rig, tmp_path, entries=None, known_hosts=None, registry=True):
    path = rig.inventory(tmp_path / "devices.yaml", registry=registry, devices=entries)
    if known_hosts:
        import yaml

        doc = yaml.safe_load(path.read_text())
        doc["known_hosts"] = str(known_hosts)
        path.write_text(yaml.safe_dump(doc))
    return inventory.load(path)


def _clean_device(dev):
    dev.docker("rmi", "-f", TAG)
    ids = dev.docker("images", "-q").stdout.split()
    if ids:
        dev.docker("rmi", "-f", *ids)


def test_devices_table_reads_docker_l4t_and_disk(rig, tmp_path):
    checks = fleet.devices_table(_inv(rig, tmp_path))
    assert [c.device for c in checks] == ["dev1", "dev2"] and all(c.ok for c in checks), checks
    for c in checks:
        assert c.arch == "x86_64" and c.l4t == "35.4.1" and c.docker_version and c.free_bytes > 0
        assert c.data_root.startswith(str(rig.devices[0].base.parent))


def test_registry_deploy_by_digest_then_redeploy_moves_nothing(rig, published, tmp_path):
    res, lock = published
    inv = _inv(rig, tmp_path)
    outs = fleet.deploy(inv, lock=lock)
    assert [o.status for o in outs] == ["ok", "ok"], fleet.summary(outs, "deploy")
    for o, dev in zip(outs, rig.devices):
        assert o.details["image_id"] == res.entry.image_id and o.details["method"] == "registry"
        assert o.details["bytes"] > 20e6
        assert dev.docker("image", "inspect", "-f", "{{.Id}}", TAG).stdout.strip() == res.entry.image_id
    again = fleet.deploy(inv, lock=lock)
    assert [(o.status, o.details["method"], o.details["bytes"]) for o in again] == [("ok", "present", 0)] * 2


def test_unreachable_and_wrong_key_fail_alone(rig, published, tmp_path):
    _, lock = published
    other_key = tmp_path / "other_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other_key)], check=True)
    d1, d2 = rig.devices
    entries = [rig.entry(d1),
               dict(rig.entry(d2), name="gone", ssh={"user": "root", "host": "127.0.0.1",
                                                     "port": deploy_rig.free_port(),
                                                     "identity_file": str(rig.keys / "id_ed25519")}),
               dict(rig.entry(d2), name="wrongkey", ssh=dict(rig.entry(d2)["ssh"], identity_file=str(other_key)))]
    outs = {o.device: o for o in fleet.deploy(_inv(rig, tmp_path, entries), lock=lock)}
    assert outs["dev1"].status == "ok"
    assert outs["gone"].status == "failed" and "unreachable" in outs["gone"].reason
    assert outs["wrongkey"].status == "failed" and "login as root" in outs["wrongkey"].reason
    assert str(other_key) in outs["wrongkey"].reason


def test_unknown_and_changed_host_keys_are_refused_with_the_fix(rig, tmp_path):
    d1 = rig.devices[0]
    empty = tmp_path / "empty_known_hosts"
    empty.touch()
    inv = _inv(rig, tmp_path, [rig.entry(d1)], known_hosts=empty)
    with pytest.raises(DeviceError) as e:
        connect(inv.devices[0], str(empty))
    assert "unknown" in str(e.value) and f"ssh-keyscan -p {d1.port} 127.0.0.1 >> {empty}" in str(e.value)
    forged = tmp_path / "forged_known_hosts"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp_path / "impostor")], check=True)
    kind, blob = (tmp_path / "impostor.pub").read_text().split()[:2]
    forged.write_text(f"[127.0.0.1]:{d1.port} {kind} {blob}\n")
    with pytest.raises(DeviceError) as e:
        connect(inv.devices[0], str(forged))
    assert "CHANGED" in str(e.value) and "ssh-keygen -R" in str(e.value)
    checks = fleet.devices_table(_inv(rig, tmp_path, [rig.entry(d1)], known_hosts=forged))
    assert not checks[0].ok and "CHANGED" in checks[0].problems[0]


def test_wrong_l4t_wrong_arch_and_full_disk_are_refused(rig, published, tmp_path):
    _, lock = published
    d1, d2 = rig.devices
    r36 = tmp_path / "nv_tegra_release"
    r36.write_text("# R36 (release), REVISION: 3.0, GCID: 36923193, BOARD: generic, EABI: aarch64\n")
    entries = [dict(rig.entry(d1), name="jp6", target="jetson-jp512", l4t_release_file=str(r36)),
               dict(rig.entry(d2), name="x86asjetson", target="jetson-jp512"),
               dict(rig.entry(d1), name="full", reserve_gb=10 ** 5),  # the inventory's bound
               rig.entry(d2)]
    _clean_device(d1)  # an image already on the device needs no space: make it need some
    outs = {o.device: o for o in fleet.deploy(_inv(rig, tmp_path, entries), lock=lock)}
    assert outs["jp6"].status == "refused" and "runs R36.3.0" in outs["jp6"].reason
    assert "architecture" in outs["x86asjetson"].reason and "L4T" not in outs["x86asjetson"].reason
    # (jetson-jp512 has no published image in this lock either: the preflight's reasons come first)
    full = outs["full"]
    assert full.status == "refused" and full.reason.startswith("disk:") and "GB free" in full.reason
    assert outs["dev2"].status == "ok"


def test_readonly_registry_refuses_push_and_lock_is_untouched(rig, tiny, local_api, tmp_path):
    lock = tmp_path / "images.lock.json"
    with pytest.raises(PublishError) as e:
        publish.publish("x86-cpu", f"{rig.readonly_registry.address}/edgebench", image=tiny, api=local_api, lock=lock)
    assert "refused the push" in str(e.value) and rig.readonly_registry.address in str(e.value)
    assert not lock.exists()
    local_api.remove_image(f"{rig.readonly_registry.address}/edgebench:{TAG.split(':', 1)[1]}", noprune=True)


def test_publish_refuses_an_image_with_the_ca_file_in_a_layer(local_api, tmp_path, rig):
    (tmp_path / "extra-ca.crt").write_text("-----BEGIN CERTIFICATE-----\nnot really\n")
    (tmp_path / "Dockerfile").write_text("FROM debian:bookworm-slim\nCOPY extra-ca.crt /etc/edgebench/extra-ca.crt\n"
                                         "RUN rm /etc/edgebench/extra-ca.crt\n")
    tag = "edgebench-test/deploy-leaky:1"
    subprocess.run(["docker", "build", "-q", "-t", tag, str(tmp_path)], check=True, capture_output=True)
    try:
        assert "etc/edgebench/extra-ca.crt" in publish.layer_leaks(local_api, tag)
        with pytest.raises(PublishError, match="extra CA file"):
            publish.publish("x86-cpu", f"{rig.registry.address}/edgebench", image=tag, api=local_api,
                            lock=tmp_path / "lock.json")
    finally:
        subprocess.run(["docker", "rmi", "-f", tag], capture_output=True)


class _KillAfter:
    """The local engine's save stream, killing the device's engine after `after` bytes (a real cut)."""

    def __init__(self, api, device, after):
        self.api, self.device, self.after = api, device, after

    def inspect_image(self, ref):
        return self.api.inspect_image(ref)

    def get_image(self, ref, chunk_size=None):
        sent = 0
        for chunk in self.api.get_image(ref, chunk_size=chunk_size):
            yield chunk
            sent += len(chunk)
            if sent >= self.after and self.device.dockerd_pid():
                self.device.kill_dockerd()


def test_stream_cut_midway_tags_nothing_and_deploy_again_finishes(rig, tiny, local_api, tmp_path):
    dev = rig.devices[1]
    _clean_device(dev)
    inv = _inv(rig, tmp_path, [rig.entry(dev)], registry=False)
    with connect(inv.devices[0], str(rig.known_hosts)) as conn:
        with pytest.raises(DeviceError) as e:
            transfer.stream(_KillAfter(local_api, dev, 40_000_000), conn.api, dev.name, tiny, TAG)
    assert "nothing was tagged" in str(e.value)
    dev.start_dockerd()
    assert dev.docker("image", "inspect", TAG).returncode != 0, "a cut transfer must leave no tag"
    want = local_api.inspect_image(tiny)["Id"]
    assert dev.docker("image", "inspect", want).returncode != 0, "no half-loaded image"
    outs = fleet.deploy(inv, image=tiny, via="ssh-stream")
    assert outs[0].status == "ok" and outs[0].details["image_id"] == want, fleet.summary(outs, "deploy")


class _PullKiller:
    def __init__(self, api, device):
        self.api, self.device = api, device

    def __getattr__(self, name):
        return getattr(self.api, name)

    def pull(self, *a, **kw):
        for ev in self.api.pull(*a, **kw):
            yield ev
            if ev.get("status") == "Downloading" and self.device.dockerd_pid():
                self.device.kill_dockerd()


def test_pull_cut_midway_tags_nothing_and_deploy_again_finishes(rig, published, tmp_path):
    res, lock = published
    dev = rig.devices[0]
    _clean_device(dev)
    inv = _inv(rig, tmp_path, [rig.entry(dev)])
    with connect(inv.devices[0], str(rig.known_hosts)) as conn:
        with pytest.raises(DeviceError) as e:
            transfer.pull_by_digest(_PullKiller(conn.api, dev), dev.name, res.entry.ref, TAG, res.entry.image_id)
    assert "nothing was tagged" in str(e.value)
    dev.start_dockerd()
    assert dev.docker("image", "inspect", TAG).returncode != 0
    outs = fleet.deploy(inv, lock=lock)
    assert outs[0].status == "ok" and outs[0].details["image_id"] == res.entry.image_id, fleet.summary(outs, "deploy")


def test_no_published_image_is_a_per_device_error(rig, tmp_path):
    outs = fleet.deploy(_inv(rig, tmp_path), lock=tmp_path / "none.json")
    assert all(o.status == "failed" and "invoke publish --target x86-cpu" in o.reason for o in outs)
