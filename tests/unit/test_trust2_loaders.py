"""Issue 20 (Trust, second pass): every input file refused at load with file, key path and allowed range."""
from __future__ import annotations

import copy
import json

import pytest
import yaml

from edgebench import results
from edgebench.bench import suite as suite_mod
from edgebench.contracts.schema import load_yaml
from edgebench.deploy.errors import InventoryError
from edgebench.deploy.inventory import load as load_inventory
from edgebench.deploy.inventory import parse as parse_inventory

INVENTORY = {"devices": [{"name": "ci-1", "target": "x86-cpu",
                          "ssh": {"user": "root", "host": "127.0.0.1", "port": 2222}}]}
SUITE = {"name": "s", "scenarios": {"testset": {"batch_size": 32, "repeats": 2}},
         "runs": [{"backend": "onnxruntime"}]}


def _inventory_error(mutate) -> str:
    doc = copy.deepcopy(INVENTORY)
    mutate(doc["devices"][0])
    with pytest.raises(InventoryError) as e:
        parse_inventory(doc, "fleet.yaml")
    assert "\n" not in str(e.value)
    return str(e.value)


def test_yaml_duplicate_key_is_refused():
    with pytest.raises(yaml.YAMLError, match="found key 'port' twice"):
        load_yaml("ssh:\n  port: 22\n  port: 2222\n")


def test_inventory_duplicate_key_is_refused(tmp_path):
    p = tmp_path / "devices.yaml"
    p.write_text("devices:\n- name: a\n  target: x86-cpu\n  ssh: {user: root, host: h, port: 22,\n"
                 "        identity_file: /k1, identity_file: /k2}\n")
    with pytest.raises(InventoryError) as e:
        load_inventory(p)
    assert str(p) in str(e.value) and "identity_file" in str(e.value) and "twice" in str(e.value)


def test_inventory_l4t_release_file_list_is_refused():
    msg = _inventory_error(lambda d: d.update(l4t_release_file=["a", "b"]))
    assert "key 'l4t_release_file'" in msg and "must be text" in msg


@pytest.mark.parametrize("key, value, words", [
    ("port", True, "integer in [1, 65535]"), ("host", "h:2299", "put a port in ssh.port")])
def test_inventory_port_true_and_host_with_port_are_refused(key, value, words):
    msg = _inventory_error(lambda d: d["ssh"].update({key: value}))
    assert f"key 'ssh.{key}'" in msg and words in msg and "device 'ci-1'" in msg


def test_inventory_runtime_5_is_refused():
    msg = _inventory_error(lambda d: d.update(runtime=5))
    assert "key 'runtime'" in msg and "must be text" in msg


def test_inventory_reserve_gb_has_an_upper_bound():
    assert "[0, 100000]" in _inventory_error(lambda d: d.update(reserve_gb=1e30))


def test_inventory_ipv6_host_is_accepted():
    doc = copy.deepcopy(INVENTORY)
    doc["devices"][0]["ssh"]["host"] = "fe80::1"
    assert parse_inventory(doc, "f.yaml").devices[0].ssh.host == "fe80::1"


def test_non_utf8_inventory_names_the_file(tmp_path):
    p = tmp_path / "devices.yaml"
    p.write_bytes(b"devices:\n- name: \xff\xfe\n")
    with pytest.raises(InventoryError) as e:
        load_inventory(p)
    assert str(p) in str(e.value) and "UTF-8" in str(e.value)


@pytest.mark.parametrize("where, value", [("repeats", 10 ** 30), ("repeats", 1.0e30), ("batch_size", 10 ** 30)])
def test_suite_repeats_1e30_is_refused(where, value):
    doc = copy.deepcopy(SUITE)
    doc["scenarios"]["testset"][where] = value
    with pytest.raises(suite_mod.SuiteError) as e:
        suite_mod.parse(doc, "s.yaml", cores=2)
    assert f"scenarios.testset.{where}: must be an integer in [1, " in str(e.value)


def test_suite_duplicate_key_is_refused(tmp_path):
    p = tmp_path / "s.yaml"
    p.write_text("name: s\nruns: [{backend: onnxruntime}]\nscenarios: {testset: {repeats: 1, repeats: 9}}\n")
    with pytest.raises(suite_mod.SuiteError, match="found key 'repeats' twice"):
        suite_mod.load(str(p), cores=2)


def _results_doc(**testset):
    doc = results.new_document("local", {"cpu": {}}, {"name": "m", "sha256": "0" * 64}, {"name": "s"})
    doc["rows"].append(results.new_row("onnxruntime", "fp32", 1, 8, "testset", throughput_ips=10.0,
                                       testset=dict({"repeats": 1, "images": 100, "seconds": [1.0]}, **testset)))
    return doc


def test_results_images_2_63_is_refused(tmp_path):
    p = tmp_path / "r.json"
    p.write_text(json.dumps(_results_doc(images=2 ** 63)))
    with pytest.raises(results.ResultsError) as e:
        results.load(p)
    assert str(p) in str(e.value) and "testset.images: must be an integer in [1, 100000000]" in str(e.value)


def test_results_throughput_1e308_is_refused():
    doc = _results_doc()
    doc["rows"][0]["throughput_ips"] = 1e308
    with pytest.raises(results.ResultsError, match=r"throughput_ips: must be a number in \[0, 1e\+09\]"):
        results.validate(doc, "r.json")


def _import(tmp_path, text):
    from edgebench.report.csvimport import import_csv

    p = tmp_path / "ext.csv"
    p.write_text(text)
    return p, lambda: import_csv(p, source="paper")


def test_csv_truncated_row_is_refused(tmp_path):
    full = "backend,scenario,mean_ms,throughput_ips\nkeras,latency,2.1,476\ntflite,latency,3.0,333\n"
    p, run = _import(tmp_path, full[:full.index("2.1") + 1])   # cut after "2"
    with pytest.raises(results.ResultsError) as e:
        run()
    assert str(p) in str(e.value) and "looks cut" in str(e.value)
    assert len(_import(tmp_path, full)[1]()[0]["rows"]) == 2


@pytest.mark.parametrize("cell, words", [("-1", "precision must be one of"), ("fp99", "precision must be one of")])
def test_csv_negative_precision_is_refused(tmp_path, cell, words):
    _, run = _import(tmp_path, f"backend,scenario,precision,throughput_ips\nkeras,throughput,{cell},10\n")
    with pytest.raises(results.ResultsError, match=words):
        run()


def test_csv_throughput_1e308_is_refused(tmp_path):
    _, run = _import(tmp_path, "backend,scenario,throughput_ips\nkeras,throughput,1e308\n")
    expected = r"line 2: column 'throughput_ips' must be a number in \[0, 1e\+09\]"
    with pytest.raises(results.ResultsError, match=expected):
        run()


LOCK_ENTRY = {"target": "x86-cpu", "repo": "127.0.0.1:5000/edgebench", "digest": "sha256:" + "a" * 64,
              "image_id": "sha256:" + "b" * 64, "size": 10, "l4t": "", "kit_version": "0.1.0", "git_revision": "abc",
              "published_at": "2026-01-01T00:00:00Z"}


@pytest.mark.parametrize("case, doc, words", [
    ("top-level list", [LOCK_ENTRY], "must be a mapping"),
    ("entry missing a key", {"schema": 1, "images": {"x86-cpu": {k: v for k, v in LOCK_ENTRY.items()
                                                                 if k != "digest"}}}, "lacks 'digest'"),
    ("entry with an extra key", {"schema": 1, "images": {"x86-cpu": dict(LOCK_ENTRY, colour="red")}},
     "images.x86-cpu.colour: unknown key"),
    ("entry that is a string", {"schema": 1, "images": {"x86-cpu": "127.0.0.1:5000/edgebench@sha256:aa"}},
     "images.x86-cpu: must be a mapping"),
    ("entry under another target", {"schema": 1, "images": {"jetson-jp512": LOCK_ENTRY}}, "is filed under"),
    ("size out of range", {"schema": 1, "images": {"x86-cpu": dict(LOCK_ENTRY, size=-1)}},
     "size: must be an integer in"),
])
def test_lock_file_shapes_are_refused(tmp_path, case, doc, words):
    from edgebench.deploy.publish import PublishError, read_lock

    p = tmp_path / "images.lock.json"
    p.write_text(json.dumps(doc))
    with pytest.raises(PublishError) as e:
        read_lock(p)
    assert str(p) in str(e.value) and words in str(e.value), case


def test_publish_progress_is_not_silent():
    from edgebench.deploy.publish import push

    class Api:
        def tag(self, *a):
            pass

        def push(self, repo, tag, stream, decode):
            yield {"status": "Pushing", "id": "l1", "progressDetail": {"current": 5_000_000, "total": 9_000_000}}
            yield {"status": "Pushing", "id": "l1", "progressDetail": {"current": 9_000_000, "total": 9_000_000}}
            yield {"status": "Pushed", "id": "l1"}
            yield {"status": "Layer already exists", "id": "l2"}
            yield {"aux": {"Digest": "sha256:" + "c" * 64}}

    lines = []
    out = push(Api(), "img", "127.0.0.1:5000/edgebench", "t", progress=lines.append)
    assert out["digest"].startswith("sha256:") and out["pushed"] == 1 and out["existing"] == 1
    assert any("layer l1: pushed (1 done, 9 MB sent" in m for m in lines), lines
    assert any("layer l2: layer already exists" in m for m in lines), lines


def test_resume_with_different_only_is_refused_or_marks_missing_rows(tmp_path):
    from edgebench.bench import resume
    from edgebench.bench.errors import BenchError

    request = {"suite": {"name": "s", "sha256": "a"}, "test_images": 64, "artifacts": {}, "data": "d",
               "reference": "r", "only": None}
    doc = results.new_document("local", {"cpu": {}}, {"name": "m", "sha256": "0" * 64}, {"name": "s"})
    doc["request"] = request
    out = tmp_path / "r.json"
    out.write_text(json.dumps(doc))
    fresh = {"request": dict(request, only=["onnxruntime"]), "environment": {}, "created": "now"}
    with pytest.raises(BenchError, match=r"--only differs \(every backend -> onnxruntime\)"):
        resume.resumable(out, fresh, groups=[])
    assert resume.differences(dict(request, only=["a", "b"]), dict(request, only=["b", "a"])) == []
    kept, done = resume.resumable(out, dict(fresh, request=request), groups=[])
    assert kept["complete"] is False and done == set()


def test_cross_model_compare_interval_including_1_is_not_a_difference():
    from types import SimpleNamespace

    from edgebench.report.compare import _line

    row = {"backend": "onnxruntime", "precision": "fp32", "threads": 1, "batch_size": 1, "scenario": "latency",
           "status": "ok"}
    a_t = [1.0 + 0.01 * (i % 5) for i in range(40)]           # model a: ~1 ms
    b_t = [10.0 + 0.1 * (i % 5) for i in range(40)]          # model b: ~10 ms per image, but 10x the FLOPs
    ra = {"value": 1000 / 1.02, "samples": a_t, "unit": "img/s"}
    rb = {"value": 1000 / 10.2, "samples": b_t, "unit": "img/s"}
    a, b = SimpleNamespace(flops=1e9), SimpleNamespace(flops=1e10)
    line = _line(a, b, dict(row), dict(row), ra, rb, per_flop=True)
    assert line["lo"] <= 1.0 <= line["hi"], line
    assert line["differs"] is False and line["verdict"] == "within noise" and "includes 1" in line["why"]
    per_image = _line(a, b, dict(row), dict(row), ra, rb, per_flop=False)
    assert per_image["differs"] is True and per_image["ratio"] < 0.2


def _reproducible(tmp_path, **container):
    from edgebench.util import sha256_file

    art = tmp_path / "a"
    art.mkdir(exist_ok=True)
    (art / "model.onnx").write_bytes(b"model")
    doc = results.new_document("ci-1", {"container": dict({"image_id": "sha256:" + "1" * 64}, **container)},
                               {"name": "m"}, {"name": "s", "runs": [{"backend": "onnxruntime"}]})
    doc["request"] = {"artifacts": {"model.onnx": sha256_file(art / "model.onnx")}, "suite": {"sha256": None},
                      "test_images": 10}
    p = tmp_path / "r.json"
    p.write_text(json.dumps(doc))
    return p, art, doc


@pytest.mark.parametrize("shape", ["json list", "string container"])
def test_reproduce_of_json_list_or_string_container_is_refused(tmp_path, shape):
    from edgebench.deploy import reproduce

    p, _, doc = _reproducible(tmp_path)
    if shape == "json list":
        p.write_text(json.dumps([doc]))
    else:
        doc["environment"]["container"] = "sha256:" + "1" * 64
        p.write_text(json.dumps(doc))
    with pytest.raises(reproduce.ReproduceError) as e:
        reproduce.plan(p)
    assert str(p) in str(e.value) and "\n" not in str(e.value)
    assert ("environment.container: must be a mapping" if shape != "json list" else "not an edgebench results") \
        in str(e.value)


def test_reproduce_leaves_no_suite_file_when_deploy_fails(tmp_path, monkeypatch):
    from edgebench.deploy import fleet, reproduce

    p, art, _ = _reproducible(tmp_path)
    inv = parse_inventory(copy.deepcopy(INVENTORY), "f.yaml")
    monkeypatch.setattr(fleet, "deploy", lambda *a, **k: [fleet.Outcome("ci-1", "failed", "transfer", "cut")])
    out = reproduce.run(inv, p, art, results_dir=tmp_path / "results")
    assert out["deploy"][0].status == "failed" and out["bench"] == []
    assert list((tmp_path / "results").iterdir()) == []


def test_fleet_result_records_the_device_name_not_label(tmp_path):
    from edgebench.deploy import reproduce

    doc = copy.deepcopy(INVENTORY)
    doc["devices"][0]["label"] = "CI box #1"
    inv = parse_inventory(doc, "f.yaml")
    assert reproduce._device_named(inv, "ci-1") == "ci-1"
    assert reproduce._device_named(inv, "CI box #1") == "ci-1"   # a file written before the fix
    from types import SimpleNamespace

    from edgebench.deploy import fleet
    from edgebench.launchers import BenchRequest, remote

    seen = []

    class Launcher:
        def __init__(self, *a, **k):
            pass

        def launch(self, req):
            seen.append(req.device)
            return SimpleNamespace(exit_code=0, results=tmp_path / "x.json", details={})

    conn = SimpleNamespace(api=SimpleNamespace(inspect_image=lambda tag: {"Id": "sha256:1", "RepoDigests": []}),
                           close=lambda: None)
    mp = pytest.MonkeyPatch()
    try:
        mp.setattr(fleet, "connection", lambda inv, d: conn)
        mp.setattr(fleet, "preflight", lambda inv, d, c: None)
        mp.setattr(remote, "RemoteLauncher", Launcher)
        req = BenchRequest(artifacts=str(tmp_path), out=str(tmp_path / "r.json"))
        [o] = fleet.bench(inv, req, "ci-1", results_dir=tmp_path, parallel=False, lock=tmp_path / "none.json")
    finally:
        mp.undo()
    assert o.status == "ok" and seen == ["ci-1"]


def test_deploy_via_typo_is_refused(monkeypatch):
    import invoke

    import tasks
    from edgebench.cli import deploy as cli_deploy
    from edgebench.deploy import fleet
    from edgebench.deploy.errors import DeployError

    called = []
    monkeypatch.setattr(fleet, "deploy", lambda *a, **k: called.append(k) or [])
    with pytest.raises(invoke.Exit) as e:
        tasks.deploy(invoke.Context(), via="regsitry")
    assert "--via 'regsitry' is not one of auto, registry, ssh" in str(e.value.message) and e.value.code == 2
    with pytest.raises(DeployError, match="not one of auto, registry, ssh"):
        cli_deploy.run_deploy(via="regsitry")
    assert called == []


def test_invoke_yaml_section_unknown_or_wrong_key_is_refused():
    import invoke

    import tasks

    c = invoke.Context(config=invoke.Config(overrides={"edgebench": {"artefacts": "a"}}))
    with pytest.raises(invoke.Exit, match=r"invoke.yaml: edgebench.artefacts: unknown key"):
        tasks._opt(c, "run", None)
    c = invoke.Context(config=invoke.Config(overrides={"edgebench": {"results": ["r"]}}))
    with pytest.raises(invoke.Exit, match=r"edgebench.results: must be text"):
        tasks._opt(c, "results", None)
    c = invoke.Context(config=invoke.Config(overrides={"edgebench": {"results": "out"}}))
    assert tasks._opt(c, "results", None) == "out" and tasks._opt(c, "run", "x") == "x"


def test_invoke_devices_non_device_error_shows_its_cause(monkeypatch):
    from edgebench.deploy import fleet

    inv = parse_inventory(copy.deepcopy(INVENTORY), "f.yaml")

    def boom(inv, d):
        raise PermissionError(13, "Permission denied: '/root/.ssh/id_ed25519'")

    monkeypatch.setattr(fleet, "connection", boom)
    [check] = fleet.devices_table(inv)
    assert not check.reachable and "PermissionError" in check.problems[0] and "id_ed25519" in check.problems[0]


def test_bench_on_crc_failing_zip_is_our_error(tmp_path, monkeypatch):
    import io
    import zipfile

    from PIL import Image

    from edgebench import data

    png = io.BytesIO()
    Image.new("RGB", (32, 32), (200, 10, 10)).save(png, format="PNG")
    p = tmp_path / "cifar.zip"
    with zipfile.ZipFile(p, "w", compression=zipfile.ZIP_STORED) as zf:
        for cls in data.CLASSES:
            zf.writestr(f"cifar10/test/{cls}/0.png", png.getvalue())
    raw = bytearray(p.read_bytes())
    at = raw.index(png.getvalue()) + len(png.getvalue()) // 2   # flip a byte inside the first member's data
    raw[at] ^= 0xFF
    p.write_bytes(bytes(raw))
    monkeypatch.setenv(data.DATA_CACHE_ENV, str(tmp_path / "cache"))
    with pytest.raises(data.DataError) as e:
        data.load_cifar10_test(str(p), use_cache=False, progress=False)
    assert str(p) in str(e.value) and "damaged zip member" in str(e.value) and "CRC" in str(e.value)


@pytest.mark.parametrize("imported, outcome", [({"source": "lab notebook"}, "renders"), ({}, "refused"),
                                               ({"note": "n"}, "refused"), ({"source": 3}, "refused")])
def test_report_of_imported_block_lacking_keys(tmp_path, imported, outcome):
    from edgebench.report import render_report
    from edgebench.report.csvimport import import_csv

    src = tmp_path / "ext.csv"
    src.write_text("device,backend,scenario,threads,avg_s,max_s,min_s,images\nlab,keras,testset,1,900,910,890,10000\n")
    [doc] = import_csv(src, source="x")
    doc["imported"] = imported
    p = tmp_path / "lab.json"
    p.write_text(json.dumps(doc))
    if outcome == "renders":
        _, md = render_report([str(p)], tmp_path / "out", include_reference=False)
        assert "lab notebook" in md.read_text()
    else:
        with pytest.raises(results.ResultsError) as e:
            results.load(p)
        assert str(p) in str(e.value) and "results.imported" in str(e.value)


def test_report_help_lists_exit_codes(capsys):
    from edgebench import cli
    from edgebench.cli.report import EXIT_CODES

    with pytest.raises(SystemExit) as e:
        cli.main(["report", "--help"])
    out = capsys.readouterr().out
    assert e.value.code == 0 and "exit codes:" in out
    for code, text in EXIT_CODES:
        assert f"  {code}  {text[:30]}" in out


@pytest.mark.parametrize("message, kind, advice", [
    ('Get "http://127.0.0.1:5999/v2/": dial tcp 127.0.0.1:5999: connect: connection refused',
     "registry unreachable", "cannot reach the registry"),
    ("manifest for 127.0.0.1:5000/edgebench@sha256:" + "a" * 64 + " not found: manifest unknown: manifest unknown",
     "digest not in the registry", "invoke publish"),
    ("unauthorized: authentication required", "credentials refused", "docker login"),
])
def test_registry_down_vs_unknown_digest_vs_credentials_have_own_wording(message, kind, advice):
    from edgebench.deploy.errors import DeviceError
    from edgebench.deploy.transfer import pull_by_digest

    class Api:
        def inspect_image(self, ref):
            from docker.errors import ImageNotFound
            raise ImageNotFound("no")

        def pull(self, repo, tag, stream, decode):
            yield {"status": "Pulling from edgebench"}
            yield {"error": message, "errorDetail": {"message": message}}

    ref = "127.0.0.1:5000/edgebench@sha256:" + "a" * 64
    with pytest.raises(DeviceError) as e:
        pull_by_digest(Api(), "ci-1", ref, "edgebench:x")
    text = str(e.value)
    assert kind in text and advice in text and "cut" not in text and "run deploy again" not in text


@pytest.mark.parametrize("how", ["pull", "stream"])
def test_cut_transfer_says_nothing_was_kept(how):
    from edgebench.deploy import transfer
    from edgebench.deploy.errors import DeviceError

    class Api:
        def inspect_image(self, ref):
            if ref == "local":
                return {"Id": "sha256:" + "1" * 64}
            from docker.errors import ImageNotFound
            raise ImageNotFound("no")

        def pull(self, repo, tag, stream, decode):
            yield {"status": "Downloading", "id": "l1", "progressDetail": {"total": 650_000_000}}
            raise ConnectionResetError(104, "Connection reset by peer")

        def get_image(self, image, chunk_size):
            yield b"x" * 1_000_000
            yield b"y" * 1_000_000

        def load_image(self, data):
            next(data)
            raise ConnectionResetError(104, "Connection reset by peer")

    with pytest.raises(DeviceError) as e:
        if how == "pull":
            transfer.pull_by_digest(Api(), "ci-1", "r@sha256:" + "a" * 64, "edgebench:x")
        else:
            transfer.stream(Api(), Api(), "ci-1", "local", "edgebench:x")
    text = str(e.value)
    assert "cut after" in text and "kept nothing" in text and "whole image again" in text
    assert "layers already there are kept" not in text


def test_encrypted_key_hint_is_not_authorized_keys():
    import paramiko

    from edgebench.deploy.ssh import explain

    inv = parse_inventory({"devices": [{"name": "ci-1", "target": "x86-cpu", "ssh": {
        "user": "root", "host": "127.0.0.1", "port": 2222, "identity_file": "/k/id_ed25519"}}]}, "f.yaml")
    msg = str(explain(inv.devices[0], "/k/known_hosts",
                      paramiko.PasswordRequiredException("private key file is encrypted")))
    assert "encrypted" in msg and "ssh-add /k/id_ed25519" in msg and "authorized_keys" not in msg
    assert "authorized_keys" in str(explain(inv.devices[0], "/k", paramiko.AuthenticationException("no")))


def test_sigterm_during_reference_step_says_what_happened(tmp_path):
    import signal

    from edgebench.bench import harness
    from edgebench.bench.errors import BenchInterrupted

    lines = []

    def killed():
        raise KeyboardInterrupt(f"signal {int(signal.SIGTERM)}")   # what the harness's SIGTERM handler raises

    with pytest.raises(BenchInterrupted):
        harness._before_rows("the reference step (keras-call fp32 logits)", tmp_path / "r.json", lines.append, killed)
    assert "interrupted by SIGTERM during the reference step" in lines[-1] and "r.json not written" in lines[-1]
    assert harness._before_rows("x", tmp_path / "r.json", lines.append, lambda: 7) == 7


@pytest.mark.parametrize("needed, words", [(3_000, "needed about 3000 bytes"), (50_000, "needed about 49 kB"),
                                           (2_500_000, "needed about 2.4 MB"), (650 * 2**20, "needed about 650.0 MB"),
                                           (None, "disk full: could not")])
def test_disk_full_message_shows_the_real_size(tmp_path, needed, words):
    import errno

    from edgebench.bench.errors import write_error

    msg = str(write_error(tmp_path / "r.json", OSError(errno.ENOSPC, "No space left on device"), needed=needed,
                          what="write the results to"))
    assert words in msg and "about 0.0 MB" not in msg and "free on" in msg
    if needed is None:
        assert "needed" not in msg
