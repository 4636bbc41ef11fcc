"""Measure `deploy --via ssh` (layers through a local registry + an SSH port forward) against the old stream
(`--via ssh-stream`: docker save -> docker load) on the deploy rig, and write JSON.

    sudo .venv/bin/python tools/deploy-bench/ssh_layers.py

The x86-cpu image (built from this tree, from the build cache where it can be), two fake devices, one run:
  1. first deploy onto an empty device: the stream (dev1) and layers with a cold local-registry store (dev2: the push
     into the store + the pull); then layers onto an emptied dev1 with the store already warm (pull only);
  2. redeploy after a change under src/ only (a copy of the repo with one changed file is built): layers (dev2)
     and the stream (dev1);
bytes are what crossed the SSH forward, counted in deploy/tunnel.py (the stream: the docker save tar).
Writes docs/measurements/deploy/deploy-ssh-layers-x86.json (or --out).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "tests" / "plugins"))
sys.path.insert(0, str(HERE))

GOAL_REDEPLOY_BYTES = 5_000_000


def fig(o):
    d = o.details
    push = d.get("push") or {}
    return {"status": o.status, "reason": o.reason, "method": d.get("method"), "seconds": d.get("seconds"),
            "wall_seconds_with_checks": o.seconds, "bytes": d.get("bytes"), "mb_per_s": d.get("mb_per_s"),
            "push_seconds": round(push["seconds"], 2) if push else None,
            "push_bytes_announced": push.get("bytes"), "push_layers_pushed": push.get("pushed"),
            "push_layers_existing": push.get("existing"), "image_id": d.get("image_id")}


def empty(dev):
    ids = dev.docker("images", "-aq").stdout.split()
    if ids:
        dev.docker("rmi", "-f", *sorted(set(ids)))


def ratio(a, b):
    return round(a / b, 2) if a and b else None


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ca-bundle", default=os.environ.get("EDGEBENCH_CA_BUNDLE", "/etc/ssl/certs/ca-certificates.crt"))
    ap.add_argument("--out", default=str(ROOT / "docs" / "measurements" / "deploy" / "deploy-ssh-layers-x86.json"))
    args = ap.parse_args()

    import deploy_rig
    from run import changed_src_image, machine

    from edgebench.deploy import fleet, inventory
    from edgebench.docker.build import build_image
    from edgebench.docker.client import api_client

    why = deploy_rig.missing()
    if why:
        sys.exit(f"deploy-bench: {why}")
    api = api_client()
    # built from this tree (cached where it can be), so the variant below differs from it only under src/
    base_tag = "edgebench-measure:x86-cpu-ssh"
    t = time.monotonic()
    built = build_image("x86-cpu", ca_bundle=args.ca_bundle, smoke_test=False, tag=base_tag, echo=None)
    print(f"base image built in {time.monotonic() - t:.0f} s ({built.cached_steps}/{built.steps} cached)",
          file=sys.stderr)
    info = api.inspect_image(base_tag)
    doc = {"machine": dict(machine(), loadavg_at_start=[round(x, 1) for x in os.getloadavg()]),
           "image": {"tag": base_tag, "built_from": "this tree", "id": info["Id"], "bytes": int(info["Size"]),
                     "layers": len(info["RootFS"]["Layers"])}}
    store = Path(tempfile.mkdtemp(prefix="eb-regstore-", dir="/tmp"))   # a cold store
    rig = deploy_rig.Rig(2).start()
    variant = None
    try:
        inv = inventory.load(rig.inventory(rig.dir / "devices.yaml", registry=False))
        dev1, dev2 = rig.devices

        def deploy(name, via, img):
            out = fleet.deploy(inv, name, via=via, image=img, registry_root=store)[0]
            print(name, via, fig(out), file=sys.stderr)
            return fig(out)

        stream1 = deploy("dev1", "ssh-stream", base_tag)
        layers_cold = deploy("dev2", "ssh", base_tag)
        empty(dev1)
        layers_warm = deploy("dev1", "ssh", base_tag)
        doc["first_deploy"] = {
            "ssh_stream": stream1, "ssh_layers_cold_store": layers_cold, "ssh_layers_warm_store": layers_warm,
            "ratio_layers_cold_over_stream": ratio(layers_cold["wall_seconds_with_checks"],
                                                   stream1["wall_seconds_with_checks"]),
            "ratio_layers_warm_over_stream": ratio(layers_warm["wall_seconds_with_checks"],
                                                   stream1["wall_seconds_with_checks"]),
            "ratios": "wall seconds of the whole deploy of that device (push into the local registry, preflight, "
                      "transfer, checks); `seconds` is the transfer alone (after the push)",
            "note": "cold store: the push into this machine's local registry (gzip of every layer by this machine's "
                    "engine) + the device's pull; warm store: the image was pushed before (another device, an "
                    "earlier deploy), only the pull. Stream bytes = the docker save tar (uncompressed); layers "
                    "bytes = both directions through the SSH forward (compressed layers + HTTP)"}

        t = time.monotonic()
        variant = changed_src_image(args.ca_bundle, "edgebench-measure:x86-cpu-ssh-srcchange")
        build_s = round(time.monotonic() - t, 1)
        layers_re = deploy("dev2", "ssh", variant.tag)
        stream_re = deploy("dev1", "ssh-stream", variant.tag)
        doc["redeploy_after_src_change"] = {
            "rebuild_seconds": build_s, "rebuild_cached_steps": f"{variant.cached_steps}/{variant.steps}",
            "ssh_layers": layers_re, "ssh_stream": stream_re,
            "ratio_layers_over_stream_seconds": ratio(layers_re["wall_seconds_with_checks"],
                                                      stream_re["wall_seconds_with_checks"]),
            "goal_bytes_at_most": GOAL_REDEPLOY_BYTES,
            "goal_met": bool(layers_re["bytes"] is not None and layers_re["bytes"] <= GOAL_REDEPLOY_BYTES)}
        doc["machine"]["loadavg_at_end"] = [round(x, 1) for x in os.getloadavg()]
        doc["store_bytes"] = sum(f.stat().st_size for f in store.rglob("*") if f.is_file())
    finally:
        rig.stop()
        for ref in [base_tag] + ([variant.tag] if variant else []):
            try:
                api.remove_image(ref, noprune=True)
            except Exception:
                pass
        import shutil

        shutil.rmtree(store, ignore_errors=True)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(doc, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
