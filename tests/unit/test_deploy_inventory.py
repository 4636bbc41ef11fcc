"""Inventory parsing: every bad input names the file, the device and the key."""
from __future__ import annotations

import pytest

from edgebench.deploy.errors import InventoryError
from edgebench.deploy.inventory import find_inventory, load, parse

GOOD = {"registry": "127.0.0.1:5000/edgebench",
        "devices": [{"name": "orin-1", "target": "jetson-jp512", "label": "Orin Nano #1",
                     "ssh": {"user": "ubuntu", "host": "192.0.2.10", "identity_file": "~/.ssh/id_ed25519"}},
                    {"name": "ci-1", "target": "x86-cpu", "l4t_release_file": "/tmp/x", "reserve_gb": 0.5,
                     "ssh": {"user": "root", "host": "127.0.0.1", "port": 2222}}]}


def test_good_inventory_parses():
    inv = parse(GOOD, "devices.yaml")
    assert [d.name for d in inv.devices] == ["orin-1", "ci-1"]
    orin, ci = inv.devices
    assert orin.ssh.port == 22 and orin.ssh.url == "ssh://ubuntu@192.0.2.10:22"
    assert orin.ssh.known_hosts_name == "192.0.2.10" and ci.ssh.known_hosts_name == "[127.0.0.1]:2222"
    assert not orin.ssh.identity_file.startswith("~") and orin.l4t_release_file == "/etc/nv_tegra_release"
    assert orin.display == "Orin Nano #1" and ci.display == "ci-1"
    assert [d.name for d in inv.select("ci-1")] == ["ci-1"] and len(inv.select("all")) == 2


def _bad(mutate):
    import copy

    doc = copy.deepcopy(GOOD)
    mutate(doc)
    with pytest.raises(InventoryError) as e:
        parse(doc, "fleet.yaml")
    return str(e.value)


@pytest.mark.parametrize("mutate, device, key", [
    (lambda d: d["devices"][0].update(colour="red"), "orin-1", "colour"),
    (lambda d: d["devices"][1].update(target="pdp-11"), "ci-1", "target"),
    (lambda d: d["devices"][1].update(name="orin-1"), "orin-1", "name"),
    (lambda d: d["devices"][0].pop("ssh"), "orin-1", "ssh"),
    (lambda d: d["devices"][0]["ssh"].pop("host"), "orin-1", "ssh.host"),
    (lambda d: d["devices"][0]["ssh"].update(port="22x"), "orin-1", "ssh.port"),
    (lambda d: d["devices"][0]["ssh"].update(password="hunter2"), "orin-1", "ssh.password"),
    (lambda d: d["devices"][1].update(reserve_gb=-1), "ci-1", "reserve_gb"),
])
def test_bad_inventory_names_file_device_and_key(mutate, device, key):
    msg = _bad(mutate)
    assert "fleet.yaml" in msg and f"device {device!r}" in msg and f"key {key!r}" in msg


def test_bad_fleet_keys():
    assert "key 'registry'" in _bad(lambda d: d.update(registry="http://x y"))
    assert "key 'credentials'" in _bad(lambda d: d.update(credentials={"user": "x"}))
    assert "key 'devices'" in _bad(lambda d: d.update(devices=[]))


def test_unknown_device_selected():
    with pytest.raises(InventoryError, match="no device named nope"):
        parse(GOOD, "f.yaml").select("ci-1,nope")


def test_find_and_load(tmp_path):
    with pytest.raises(InventoryError, match="copy devices.example.yaml"):
        find_inventory(root=tmp_path)
    (tmp_path / "devices.yaml").write_text("devices: [\n")
    with pytest.raises(InventoryError, match="not valid YAML"):
        load(find_inventory(root=tmp_path))
    with pytest.raises(InventoryError, match="--inventory does not exist"):
        find_inventory("missing.yaml", root=tmp_path)


def test_example_inventory_is_valid():
    from pathlib import Path

    inv = load(Path(__file__).resolve().parents[2] / "devices.example.yaml")
    assert inv.devices and all(d.ssh.user for d in inv.devices)
