"""The launcher seam: one request spelling every `edgebench bench` option, carried out by each launcher."""
from __future__ import annotations

import argparse
import inspect
from dataclasses import fields
from pathlib import Path

import pytest

from edgebench.cli.bench import add_arguments, request_from_args
from edgebench.launchers import BenchRequest, get_launcher
from edgebench.launchers.local import LocalLauncher

ROOT = Path(__file__).resolve().parents[2]


def _parser():
    p = argparse.ArgumentParser()
    add_arguments(p)
    return p


def _request_fields():
    return {f.name for f in fields(BenchRequest)} - {"extra"}


def test_cli_options_are_the_request_fields():
    dests = {a.dest for a in _parser()._actions if a.dest != "help"}
    assert dests == _request_fields()


def test_invoke_bench_reaches_every_bench_option():
    import tasks

    params = set(inspect.signature(tasks.bench.body).parameters) - {"c"}
    # artifacts and out come from --run and --out; every other option is a flag of the task
    missing = _request_fields() - params - {"artifacts"}
    assert not missing, f"invoke bench lacks {sorted(missing)}"


def test_request_round_trips_through_argv():
    req = BenchRequest(artifacts="/a", out="/r/x.json", suite="/s.yaml", data="/d.zip", device="dev",
                       test_limit=64, only=["onnxruntime", "tflite"], reference="onnxruntime", resume=True)
    args = _parser().parse_args(req.to_argv()[1:])
    assert request_from_args(args) == req


def test_request_refuses_contradictions():
    with pytest.raises(ValueError, match="choose one"):
        BenchRequest(artifacts="/a", out="/o.json", resume=True, force=True)
    with pytest.raises(ValueError, match="test-limit"):
        BenchRequest(artifacts="/a", out="/o.json", test_limit=0)


def test_with_paths_only_touches_paths():
    req = BenchRequest(artifacts="/a", out="/o.json", device="d", only=["tflite"])
    moved = req.with_paths(artifacts="/artifacts", out="/results/o.json")
    assert (moved.artifacts, moved.out, moved.device, moved.only) == ("/artifacts", "/results/o.json", "d", ["tflite"])
    with pytest.raises(ValueError):
        req.with_paths(device="other")


def test_get_launcher_picks_by_target():
    assert isinstance(get_launcher("local"), LocalLauncher)
    launcher = get_launcher("x86-cpu")
    assert launcher.describe() == "container x86-cpu"


def test_missing_artifacts_is_one_message_for_every_launcher(tmp_path):
    req = BenchRequest(artifacts=str(tmp_path / "nope"), out=str(tmp_path / "r.json"))
    for target in ("local", "x86-cpu"):
        with pytest.raises(FileNotFoundError, match="artifacts folder not found"):
            get_launcher(target).launch(req)


@pytest.mark.parametrize("exc, message", [
    (KeyboardInterrupt("signal 15"), "bench: interrupted; completed rows are in"),  # nothing said it yet
    (None, None),  # the harness said what it kept and how to resume: exit 130, nothing said twice
])
def test_invoke_bench_says_interrupted_once(monkeypatch, tmp_path, exc, message):
    import invoke

    import tasks
    from edgebench import launchers
    from edgebench.bench.errors import BenchInterrupted

    class Stopped:
        def launch(self, request):
            raise exc if exc is not None else BenchInterrupted(request.out)

    monkeypatch.setattr(launchers, "get_launcher", lambda target, image=None: Stopped())
    with pytest.raises(invoke.exceptions.Exit) as err:
        tasks.bench(invoke.Context(), target="local", run="r", out=str(tmp_path / "r.json"), data="x.zip")
    assert err.value.code == 130
    assert (err.value.message is None) if message is None else err.value.message.startswith(message)
