"""edgebench tasks: `invoke train export build deploy bench report` (and `invoke demo`).

Thin wrappers over the `edgebench` package. Options come from the flag, then `invoke.yaml`
(section `edgebench:`), then the defaults here. Failures end with `Exit(message)`.
Heavy frameworks are imported inside the tasks, so `invoke --list` works without them.
"""
from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import invoke
from invoke import Exit

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT / "src"))  # run from a checkout without installing
# TensorFlow's C++ INFO lines (oneDNN, CPU flags, "Executor start aborting ... not an error") are not the kit's
# output; its warnings and errors still show. EDGEBENCH_TF_LOG_LEVEL=0 brings them back.
from edgebench.errors import USER_ERRORS  # noqa: E402  (after the path insert; stdlib only)
from edgebench.util import tf_log_level  # noqa: E402  (after the path insert; stdlib only)

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", tf_log_level())

#: the one short flag each option gets (invoke's automatic ones gave -v for --devices and -c for --force)
SHORT_FLAGS = {"target": "t", "run": "r", "data": "d", "suite": "s", "out": "o", "model": "m", "epochs": "e",
               "batch_size": "b", "results": "R", "image": "i"}


class _Task(invoke.Task):
    """A task whose only short flags are SHORT_FLAGS' (no automatic first-free-letter ones)."""

    def arg_opts(self, name, default, taken_names):
        opts = super().arg_opts(name, default, taken_names)
        flag = SHORT_FLAGS.get(name)
        opts["names"] = opts["names"][:1] + ([flag] if flag and flag not in taken_names else [])
        return opts


def task(*args, **kwargs):
    kwargs.setdefault("klass", _Task)
    return invoke.task(*args, **kwargs)


def _targets() -> str:
    """Every container target (containers/<name>/target.yaml), read from the folder, not typed here."""
    from edgebench.docker.targets import available

    return ", ".join(available(ROOT / "containers")) or "(none found in containers/)"


TARGETS = _targets()

DEFAULTS = {
    "run": "resnet34",            # artifacts/<run>/
    "model": "resnet34",
    "artifacts": "artifacts",
    "results": "results",
    "reports": "reports",
    "data": None,                 # CIFAR-10 source; None: $EDGEBENCH_DATA, else Keras' download
    "target": "local",
    "device": "local",
    "suite": None,                # None: the kit's default suite
}
DEMO = {"model": "resnet18-half", "epochs": 2, "train_limit": 10000, "parity_images": 1000,
        "suite": "src/edgebench/suites/demo.yaml"}


def _opt(c, name, value):
    """Flag, then invoke.yaml's `edgebench.<name>`, then the default."""
    from edgebench.contracts.invoke_config import ConfigError, section

    if value not in (None, ""):
        return value
    try:
        cfg = section(c.config.get("edgebench", {}) or {})
    except ConfigError as exc:
        raise Exit(str(exc), code=2) from None
    return cfg.get(name, DEFAULTS.get(name))


def _run_dir(c, run):
    return ROOT / _opt(c, "artifacts", None) / _opt(c, "run", run)


def _in_container(job, c, run, data, target, image, args):
    """`edgebench <job>` in the target's image with the GPU (launchers.job); the run folder comes back here."""
    from edgebench.launchers.job import ContainerJob, JobRequest

    try:
        res = ContainerJob(target, image=image).run(JobRequest(job, str(_run_dir(c, run)), _opt(c, "data", data),
                                                               args))
    except USER_ERRORS as exc:
        raise Exit(f"{job} --target {target}: {exc}") from None
    except KeyboardInterrupt:
        raise Exit(f"{job}: interrupted; the run folder {_run_dir(c, run)} keeps what was saved "
                   f"(run the same command again to resume)", code=130) from None
    print(f"{job} in {target}: {res.seconds / 60:.1f} min -> {_run_dir(c, run)}; log {res.log_path}")


TARGET_HELP = f"local (default: this host) or a container target to run in, with its GPU: {TARGETS}"


@task(help={
    "data": "CIFAR-10 source: cifar-10-python.tar.gz, cifar-10-batches-py/, or a train|test/<class>/ folder or .zip",
    "model": f"registered model (default {DEFAULTS['model']}; `edgebench models` lists them)",
    "run": f"run name (default {DEFAULTS['run']}): writes artifacts/<run>/model.keras and train.json",
    "epochs": "epochs (default 10, as in the seed study)",
    "batch_size": "batch size (default 64)",
    "train_limit": "use only this many training images (default: all 50,000)",
    "seed": "random seed (default 0)",
    "target": TARGET_HELP,
    "image": "image for a container target (default edgebench:<version>-<target>)",
})
def train(c, data=None, model=None, run=None, epochs=10, batch_size=64, train_limit=None, seed=0, target=None,
          image=None):
    """Train a model on CIFAR-10 -> artifacts/<run>/model.keras + train.json (resumes if interrupted)."""
    if target not in (None, "", "local"):
        args = ["--model", _opt(c, "model", model), "--epochs", str(int(epochs)), "--batch-size",
                str(int(batch_size)), "--seed", str(int(seed))] + (["--train-limit", str(int(train_limit))]
                                                                   if train_limit else [])
        return _in_container("train", c, run, data, target, image, args)
    from edgebench.train import TrainConfig
    from edgebench.train import train as train_fn

    cfg = TrainConfig(model=_opt(c, "model", model), epochs=int(epochs), batch_size=int(batch_size),
                      train_limit=int(train_limit) if train_limit else None, seed=int(seed))
    try:
        meta = train_fn(cfg, str(_run_dir(c, run)), data_source=_opt(c, "data", data))
    except USER_ERRORS as exc:
        raise Exit(f"train: {exc}") from None
    print(f"test top-1 {meta['test_top1']:.4f}, {meta['train_seconds'] / 60:.1f} min -> {_run_dir(c, run)}")


@task(help={
    "run": f"run name (default {DEFAULTS['run']}: artifacts/<run>/model.keras)",
    "formats": "comma-separated subset of: savedmodel,onnx,onnx-int8,tflite-fp32,tflite-fp16,tflite-int8,tensorrt-* "
               "(default: every format this place can make)",
    "data": "CIFAR-10 source for calibration and parity images",
    "parity_images": "test images each artifact is compared on (default 1000)",
    "target": TARGET_HELP + " (TensorRT engines are made where TensorRT is)",
    "image": "image for a container target (default edgebench:<version>-<target>)",
})
def export(c, run=None, formats=None, data=None, parity_images=1000, target=None, image=None):
    """Export model.keras to SavedModel, ONNX (FP32, INT8), TFLite (FP32/FP16/INT8) + manifest.json."""
    if target not in (None, "", "local"):
        args = ["--parity-images", str(int(parity_images))] + (["--formats", *formats.split(",")] if formats else [])
        return _in_container("export", c, run, data, target, image, args)
    from edgebench.export import export_all
    from edgebench.export import manifest as manifest_mod

    model = _run_dir(c, run) / "model.keras"
    if not model.exists():
        raise Exit(f"export: {model} does not exist; run `invoke train` first")
    fmts = formats.split(",") if formats else None
    try:
        man = export_all(model, formats=fmts, data_source=_opt(c, "data", data), parity_images=int(parity_images))
    except USER_ERRORS as exc:  # unreadable data, an unknown --formats name: one line, not a traceback
        raise Exit(f"export: {exc}") from None
    bad = manifest_mod.failed(man)
    if bad:
        raise Exit("export: failed: " + ", ".join(f"{a['name']} ({a.get('error') or 'parity'})" for a in bad))


@task(help={
    "target": f"container target (default x86-cpu): {TARGETS} (containers/<target>/target.yaml)",
    "base_image": "override the target's base image",
    "platform": "build platform, e.g. linux/arm64",
    "ca_bundle": "extra CA bundle (PEM) for pip behind a TLS-intercepting proxy (default: $EDGEBENCH_CA_BUNDLE, "
                 "else the bundle the host's pip trusts: PIP_CERT, REQUESTS_CA_BUNDLE, SSL_CERT_FILE, pip config cert)",
    "no_cache": "build without Docker's layer cache",
    "smoke_test": "run the smoke test in the image after building (default on)",
})
def build(c, target="x86-cpu", base_image=None, platform=None, ca_bundle=None, no_cache=False, smoke_test=True):
    """Render containers/<target> through templates/Dockerfile.j2 and build the image (docker SDK)."""
    from edgebench.docker.build import build_image
    from edgebench.docker.cabundle import resolve as resolve_ca

    try:
        res = build_image(target, base_image=base_image, platform=platform, ca_bundle=resolve_ca(ca_bundle),
                          no_cache=no_cache, smoke_test=smoke_test)
    except USER_ERRORS as exc:
        raise Exit(f"build: {exc}") from None
    print(f"built {res.tag} ({res.image_id[:19]}) in {res.seconds:.0f} s; log {res.log_path}")


def _deploy_call(fn, *args, **kwargs):
    """Run one deploy-family command; bad input (inventory, lock, results file) ends as Exit."""
    try:
        code = fn(*args, **kwargs)
    except USER_ERRORS as exc:
        raise Exit(f"{fn.__name__.replace('run_', '')}: {exc}", code=2) from None
    if code:
        raise Exit(code=code)


FLEET_HELP = {
    "inventory": "devices.yaml (default: invoke.yaml's edgebench.inventory, then devices.yaml here)",
    "devices": "all, or a comma-separated list of device names",
}


@task(help=dict(FLEET_HELP, json="print JSON instead of the table"))
def devices(c, inventory=None, devices="all", json=False):
    """Preflight every device: reachable, Docker, arch, L4T, runtimes, free disk, power mode."""
    from edgebench.cli.deploy import run_devices

    _deploy_call(run_devices, inventory=inventory, devices=devices, as_json=json,
                 config_value=_opt(c, "inventory", None))


@task(help=dict(inventory=FLEET_HELP["inventory"], target="container target to publish",
                registry="host:port/repo (default: the inventory's)",
                image="local image (default edgebench:<version>-<target>)",
                lock="lock file (default images.lock.json)"))
def publish(c, target="x86-cpu", inventory=None, registry=None, image=None, lock=None):
    """Push a built image to the registry by digest and record it in images.lock.json."""
    from edgebench.cli.deploy import run_publish

    _deploy_call(run_publish, target, inventory=inventory, registry=registry, image=image, lock=lock,
                 config_value=_opt(c, "inventory", None))


@task(help=dict(FLEET_HELP, image="a published repo@sha256:... (no local build), or a local image",
                via="auto (registry when the inventory names one, else ssh), registry, ssh (the layers the device "
                    "lacks, through an SSH port forward), or ssh-stream (the whole image over SSH)",
                serial="one device at a time", lock="lock file (default images.lock.json)"))
def deploy(c, devices="all", image=None, via="auto", serial=False, inventory=None, lock=None):
    """Put the image on each device: registry pull by digest, its missing layers over SSH, or the whole image."""
    from edgebench.cli.deploy import run_deploy
    from edgebench.deploy.fleet import VIAS

    if via not in VIAS:   # before the inventory is read: a typo never falls back to streaming over SSH
        raise Exit(f"deploy: --via {via!r} is not one of {', '.join(VIAS)}", code=2)
    _deploy_call(run_deploy, inventory=inventory, devices=devices, image=image, via=via, serial=serial, lock=lock,
                 config_value=_opt(c, "inventory", None))


@task(help=dict(FLEET_HELP, run="run name (artifacts/<run>/): its files must match the result's sha256s",
                data="CIFAR-10 source", serial="one device at a time",
                devices="devices to re-run on (default: the result's own device)",
                suite="the original suite file, when the result's own copy cannot be rebuilt"))
def reproduce(c, results, run=None, devices=None, data=None, inventory=None, serial=False, suite=None):
    """Re-run RESULTS.json in the identical image (digest) with the same artifacts, then compare the two."""
    from edgebench.cli.deploy import run_reproduce

    _deploy_call(run_reproduce, results, str(_run_dir(c, run)), inventory=inventory, devices=devices,
                 data=_opt(c, "data", data), results_dir=str(ROOT / _opt(c, "results", None)),
                 reports_dir=str(ROOT / _opt(c, "reports", None)), serial=serial,
                 config_value=_opt(c, "inventory", None), suite=suite)


def _bench_help(**invoke_only):
    """invoke bench's help: BenchRequest's own option help (one definition), plus the task's own options."""
    from edgebench.contracts.request import options

    return dict({o.name: o.help for o in options() if not o.required}, **invoke_only)


@task(help=_bench_help(
    target=f"local (default: this host, no container) or a container target: {TARGETS}",
    run=f"run name (default {DEFAULTS['run']}: artifacts/<run>/)",
    only="comma-separated backends to run",
    out="results JSON (default results/<run>-<device>-<target>.json)",
    image="image to run for a container target (default edgebench:<version>-<target>)",
    devices="run on these inventory devices (all, or a,b) in their deployed images, in parallel",
    serial="with --devices: one device at a time",
    inventory="with --devices: devices.yaml (default: invoke.yaml's edgebench.inventory, then devices.yaml)",
))
def bench(c, target=None, run=None, suite=None, device=None, data=None, test_limit=None, only=None, out=None,
          reference=None, resume=False, force=False, image=None, allow_unverified=False, devices=None,
          serial=False, inventory=None):
    """Run the benchmark suite on this host (--target local) or inside a target's container."""
    from edgebench.contracts.vocabulary import REFERENCE_BACKEND
    from edgebench.launchers import BenchRequest, get_launcher

    target = _opt(c, "target", target)
    device = _opt(c, "device", device)
    artifacts = _run_dir(c, run)
    # -> <stem>-<device>.json
    fleet_out = Path(out) if out else ROOT / _opt(c, "results", None) / f"{artifacts.name}.json"
    out = Path(out) if out else ROOT / _opt(c, "results", None) / f"{artifacts.name}-{device}-{target}.json"
    try:
        request = BenchRequest(artifacts=str(artifacts), out=str(out), suite=_opt(c, "suite", suite),
                               data=_opt(c, "data", data), device=device,
                               test_limit=int(test_limit) if test_limit else None,
                               only=only.split(",") if only else None,
                               reference=reference or REFERENCE_BACKEND, resume=resume, force=force,
                               allow_unverified=allow_unverified)
        if devices:  # the fleet: results/<run>-<device>.json per device, a summary, failures per device
            from edgebench.cli.deploy import run_bench

            return _deploy_call(run_bench, request.with_paths(out=str(fleet_out)), inventory=inventory,
                                devices=devices, serial=serial,
                                config_value=_opt(c, "inventory", None))
        res = get_launcher(target, image=image).launch(request)
    except USER_ERRORS as exc:
        raise Exit(f"bench: {exc}") from None
    except KeyboardInterrupt as exc:
        if getattr(exc, "reported", False):  # the harness has said what it kept and how to resume
            raise Exit(code=130) from None
        raise Exit(f"bench: interrupted; completed rows are in {out} (run again with --resume)", code=130) from None
    # the harness's own summary ("wrote <results> ...; framework log: ...") has named the file: no second line
    if res.exit_code:
        raise Exit(f"bench: some rows failed (exit {res.exit_code}); their reasons are in {res.results}",
                   code=res.exit_code)


@task(help={
    "results": "comma-separated results JSON files (default: every results/*.json)",
    "out": "report folder (default reports/)",
    "title": "report title",
    "reference": "include the seed study's imported table (default on)",
})
def report(c, results=None, out=None, title=None, reference=True):
    """Render report.html and report.md from results JSON files (never re-runs anything)."""
    from edgebench.report import ReportError, render_report

    paths = results.split(",") if results else sorted(str(p) for p in (ROOT / _opt(c, "results", None)).glob("*.json"))
    if not paths:
        raise Exit("report: no results JSON given and none in results/; run `invoke bench` first")
    try:  # a named file that does not exist, or nothing readable: an error, and nothing is written
        html, md = render_report(paths, str(ROOT / (out or _opt(c, "reports", None))), title=title,
                                 include_reference=reference)
    except ReportError as exc:
        raise Exit(f"report: {exc}", code=2) from None
    print(f"report: {html}\n        {md}")


def _stage_table(stages, cpu, load) -> str:
    """The demo's closing table: one line per stage, the total, and the machine it ran on."""
    total = sum(sec for _, sec in stages)
    lines = [f"demo stages on {cpu} (load average {load}):"]
    lines += [f"  {name:<24s} {sec / 60:5.1f} min  ({sec:4.0f} s)" for name, sec in stages]
    lines.append(f"  {'total':<24s} {total / 60:5.1f} min  ({total:4.0f} s)")
    return "\n".join(lines)


def _fresh_demo_run(run_dir: Path) -> None:
    """The demo's run folder is its own: one left by another demo recipe (an older kit) is replaced."""
    import json
    import shutil

    state = run_dir / "train_state.json"
    try:
        old = json.loads(state.read_text()).get("config", {})
    except (OSError, ValueError):
        return
    if old.get("model") != DEMO["model"] or old.get("epochs") != DEMO["epochs"] \
            or old.get("train_limit") != DEMO["train_limit"]:
        print(f"demo: replacing {run_dir} (another recipe: {old.get('model')}, {old.get('epochs')} epochs)",
              file=sys.stderr)
        shutil.rmtree(run_dir)


@task(help={"data": "CIFAR-10 source (offline: ../shared/data/cifar10/cifar10-jpeg.zip or the official archive)",
            "started": "epoch seconds when `make demo` started (the Makefile passes it: the venv stage is timed)"})
def demo(c, data=None, started=None):
    """The whole pipeline on this machine as a smoke run (train, export, bench, report), timed per stage.

    Trains resnet18-half (2 epochs, 10,000 images), exports every format, runs the demo suite, renders the report.
    """
    from edgebench.machine.fingerprint import cpu_info

    data = _opt(c, "data", data)
    run = "demo"
    c.config.setdefault("edgebench", {})
    stages = [("setup (venv, make)", time.time() - float(started))] if started else []

    def stage(name, fn, *args, **kwargs):
        t0 = time.perf_counter()
        try:
            return fn(c, *args, **kwargs)
        finally:
            stages.append((name, time.perf_counter() - t0))

    _fresh_demo_run(ROOT / _opt(c, "artifacts", None) / run)
    stage("train", train, data=data, run=run, model=DEMO["model"], epochs=DEMO["epochs"],
          train_limit=DEMO["train_limit"])
    try:
        stage("export (every format)", export, run=run, data=data, parity_images=DEMO["parity_images"])
    except Exit as exc:  # a format that fails parity is still benchmarked and shown as such
        print(f"demo: continuing after export problems: {exc.message}", file=sys.stderr)
    stage("bench (demo suite)", bench, target="local", run=run, suite=str(ROOT / DEMO["suite"]), device="local",
          data=data, out=str(ROOT / "results" / "demo-local.json"), force=True)  # the demo replaces its own file
    stage("report", report, results=str(ROOT / "results" / "demo-local.json"), out=str(ROOT / "reports" / "demo"),
          title="edgebench demo (this machine, a smoke run)")
    cpu = cpu_info()
    name = f"{cpu['model']} ({cpu['usable_cores']} cores; {' '.join(cpu['isa'])})"
    load = " ".join(f"{v:.2f}" for v in os.getloadavg()) if hasattr(os, "getloadavg") else "n/a"
    print(_stage_table(stages, name, load))
    print(f"a smoke run: {DEMO['model']} trained {DEMO['epochs']} epochs on {DEMO['train_limit']:,} images, so its "
          f"accuracy and INT8 parity say little; the speeds are this machine's (`invoke train` for the real model)")
