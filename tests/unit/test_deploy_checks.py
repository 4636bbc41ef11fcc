"""Preflight judgement, the publish-side layer check, the lock file, reproduce's artifact check, host-key
messages and fleet isolation: hermetic (no Docker, no SSH)."""
from __future__ import annotations

import io
import json
import tarfile

import pytest

from edgebench.deploy import fleet, preflight, publish, reproduce
from edgebench.deploy.errors import DeviceError, HostKeyError
from edgebench.deploy.inventory import parse
from edgebench.docker.targets import load as load_target

INV = parse({"devices": [
    {"name": "orin", "target": "jetson-jp512", "ssh": {"user": "u", "host": "127.0.0.1", "port": 2201}},
    {"name": "box", "target": "x86-cpu", "reserve_gb": 2, "ssh": {"user": "u", "host": "127.0.0.1", "port": 2202}},
]}, "inv.yaml")
ORIN, BOX = INV.devices
R35 = "# R35 (release), REVISION: 4.1, GCID: 33958178, BOARD: t186ref, EABI: aarch64, DATE: Fri Jul  9"
GB = 1024 ** 3


def test_parse_l4t_and_df():
    assert preflight.parse_l4t(R35 + "\nmore") == "35.4.1"
    assert preflight.parse_l4t("# R36 (release), REVISION: 3.0, GCID: 1") == "36.3.0"
    assert preflight.parse_l4t("Ubuntu") is None and preflight.parse_l4t(None) is None
    df = "Filesystem 1024-blocks Used Available Capacity Mounted on\n/dev/vda 100 50 2048 50% /var/lib/docker\n"
    assert preflight.parse_df(df) == 2048 * 1024


def _check(**kw):
    base = dict(device="orin", reachable=True, arch="aarch64", l4t="35.4.1", runtimes=["nvidia", "runc"],
                data_root="/var/lib/docker", free_bytes=20 * GB)
    base.update(kw)
    return preflight.DeviceCheck(**base)


def test_jetson_device_passes_and_each_fault_is_named():
    jp5 = load_target("jetson-jp512")
    assert preflight.judge(_check(), ORIN, jp5, 8 * GB).ok
    wrong_l4t = preflight.judge(_check(l4t="36.3.0"), ORIN, jp5, 8 * GB)
    assert not wrong_l4t.ok and "L4T" in wrong_l4t.problems[0] and "R36.3.0" in wrong_l4t.problems[0]
    no_l4t = preflight.judge(_check(l4t=None), ORIN, jp5)
    assert "absent" in no_l4t.problems[0]
    x86 = preflight.judge(_check(arch="x86_64"), ORIN, jp5)
    assert any(p.startswith("architecture") and "x86_64" in p for p in x86.problems)
    no_rt = preflight.judge(_check(runtimes=["runc"]), ORIN, jp5)
    assert any("'nvidia'" in p for p in no_rt.problems)
    full = preflight.judge(_check(free_bytes=8 * GB), ORIN, jp5, 8 * GB)
    assert any(p.startswith("disk") and "reserve" in p for p in full.problems)
    present = preflight.judge(_check(free_bytes=1 * GB), ORIN, jp5, 8 * GB, image_present=True)
    assert present.ok, "an image already there needs no space"


def test_x86_target_ignores_l4t_and_table_lists_problems():
    cpu = load_target("x86-cpu")
    ok = preflight.judge(_check(device="box", arch="x86_64", l4t=None, runtimes=["runc"]), BOX, cpu, GB)
    bad = preflight.judge(_check(device="box", arch="aarch64", runtimes=["runc"]), BOX, cpu, GB)
    assert ok.ok and not bad.ok
    text = preflight.table([ok, bad])
    assert "box" in text and "NO" in text and "architecture" in text


def _layer(names):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as t:
        for n in names:
            info = tarfile.TarInfo(n)
            info.size = 3
            t.addfile(info, io.BytesIO(b"abc"))
    return buf.getvalue()


def _saved(layers):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as t:
        for i, data in enumerate(layers):
            info = tarfile.TarInfo(f"{i:064x}/layer.tar")
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
        man = b"[]"
        info = tarfile.TarInfo("manifest.json")
        info.size = len(man)
        t.addfile(info, io.BytesIO(man))
    data = buf.getvalue()
    return [data[i:i + 777] for i in range(0, len(data), 777)]  # odd chunk sizes, like a stream


class FakeApi:
    def __init__(self, layers, history=()):
        self.layers, self.hist = layers, history

    def get_image(self, image, chunk_size=None):
        return iter(_saved(self.layers))

    def history(self, image):
        return [{"CreatedBy": h} for h in self.hist]


def test_layer_check_finds_ca_even_when_deleted_later():
    leaky = FakeApi([_layer(["etc/edgebench/extra-ca.crt", "usr/bin/x"]), _layer(["etc/edgebench/.wh.extra-ca.crt"])])
    assert publish.layer_leaks(leaky, "img") == ["etc/edgebench/extra-ca.crt", "etc/edgebench/.wh.extra-ca.crt"]
    with pytest.raises(publish.PublishError, match="extra CA file"):
        publish.check_clean(leaky, "img")
    clean = FakeApi([_layer(["usr/bin/x", "etc/ssl/certs/ca-certificates.crt"])])
    publish.check_clean(clean, "img")
    with pytest.raises(publish.PublishError, match="COPY"):
        history = ["/bin/sh -c #(nop) COPY file:1 in /etc/edgebench/extra-ca.crt"]
        publish.check_clean(FakeApi([], history), "i", deep=False)


def test_lock_round_trip(tmp_path):
    e = publish.LockEntry("x86-cpu", "127.0.0.1:5000/edgebench", "sha256:" + "a" * 64, "sha256:" + "b" * 64, 10, "",
                          "0.1.0", "abc", "2026-01-01T00:00:00Z")
    path = tmp_path / "images.lock.json"
    publish.write_lock(path, {"x86-cpu": e})
    assert publish.read_lock(path)["x86-cpu"] == e
    assert json.loads(path.read_text())["images"]["x86-cpu"]["ref"] == e.ref
    path.write_text('{"schema": 9}')
    with pytest.raises(publish.PublishError, match="schema"):
        publish.read_lock(path)


RESULTS_HEADER = {"schema": "edgebench.results", "schema_version": 1, "model": {}, "rows": []}  # a real results file
ID1 = "sha256:" + "1" * 64


def test_reproduce_refuses_mismatched_artifacts(tmp_path):
    from edgebench.util import sha256_file

    (tmp_path / "a").mkdir()
    f = tmp_path / "a" / "model.onnx"
    f.write_bytes(b"model")
    doc = {**RESULTS_HEADER, "device": "box",
           "environment": {"container": {"image_id": ID1, "image_digest": "r@sha256:" + "2" * 64}},
           "request": {"artifacts": {"model.onnx": sha256_file(f), "manifest.json": "0" * 64},
                       "suite": {"sha256": None}, "test_images": 100},
           "suite": {"name": "s", "groups": [], "resolved_threads": [1], "test_images": 100}}
    res = tmp_path / "r.json"
    res.write_text(json.dumps(doc))
    p = reproduce.plan(res)
    assert p.image_ref == "r@sha256:" + "2" * 64 and "resolved_threads" not in p.suite
    with pytest.raises(reproduce.ReproduceError, match="manifest.json: missing"):
        reproduce.check_artifacts(p, tmp_path / "a")
    (tmp_path / "a" / "manifest.json").write_text("{}")
    with pytest.raises(reproduce.ReproduceError, match="sha256 .* but the result used"):
        reproduce.check_artifacts(p, tmp_path / "a")
    doc["environment"]["container"] = None
    res.write_text(json.dumps(doc))
    with pytest.raises(reproduce.ReproduceError, match="not measured in a container"):
        reproduce.plan(res)


def test_host_key_messages_say_how_to_accept():
    import paramiko

    key = paramiko.Ed25519Key.generate() if hasattr(paramiko.Ed25519Key, "generate") else None
    from edgebench.deploy.ssh import explain

    missing = paramiko.SSHException("Server '[127.0.0.1]:2202' not found in known_hosts")
    unknown = explain(BOX, "/k/known_hosts", missing)
    assert isinstance(unknown, HostKeyError) and "ssh-keyscan -p 2202 127.0.0.1 >> /k/known_hosts" in str(unknown)
    if key is None:
        key = paramiko.RSAKey.generate(1024)
    changed = explain(BOX, "/k/known_hosts", paramiko.BadHostKeyException("127.0.0.1", key, key))
    assert "CHANGED" in str(changed) and "ssh-keygen -R '[127.0.0.1]:2202'" in str(changed)
    assert "unreachable" in str(explain(BOX, "/k", ConnectionRefusedError(111, "refused")))
    auth = explain(BOX, "/k", paramiko.AuthenticationException("no"))
    assert "login as u" in str(auth)


def test_one_failing_device_does_not_stop_the_others():
    def work(d):
        if d.name == "orin":
            raise DeviceError("orin", "preflight", "L4T: wrong")
        if d.name == "box":
            return fleet.Outcome("box", "ok")

    outs = fleet.for_each(INV.devices, work, parallel=True)
    assert [(o.device, o.status, o.step) for o in outs] == [("orin", "refused", "preflight"), ("box", "ok", "")]
    assert "1/2 devices ok" in fleet.summary(outs, "bench")


def test_reproduce_rebuilds_the_suite_to_its_recorded_digest(tmp_path):
    from edgebench.bench.resume import suite_digest

    raw = {"name": "s", "threads": [2], "runs": [{"backend": "onnxruntime", "precisions": ["fp32"]}]}
    for original in (raw, dict(raw, test_images=300)):  # without and with the suite's own test_images
        doc = {**RESULTS_HEADER, "device": "box", "environment": {"container": {"image_id": ID1}},
               "request": {"artifacts": {"m": "0" * 64}, "suite": {"sha256": suite_digest(original)},
                           "test_images": 300},
               "suite": dict(original, resolved_threads=[2], test_images=300, data={"source": "x"})}
        res = tmp_path / "r.json"
        res.write_text(json.dumps(doc))
        p = reproduce.plan(res)
        assert p.suite == original
        assert reproduce.write_suite(p, tmp_path).is_file()
    doc["request"]["suite"]["sha256"] = "f" * 64
    res.write_text(json.dumps(doc))
    with pytest.raises(reproduce.ReproduceError, match="--suite"):
        reproduce.write_suite(reproduce.plan(res), tmp_path)
