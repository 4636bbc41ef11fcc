"""The command line and the invoke tasks: help without heavy imports, every pipeline step listed."""
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
INVOKE = Path(sys.executable).parent / "invoke"


def test_help_imports_no_framework():
    code = ("import sys, edgebench.cli as c; c.build_parser().format_help(); "
            "heavy = [m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'onnxruntime', 'tf2onnx', 'docker', "
            "'tensorrt', 'torch')]; print(heavy); assert not heavy, heavy")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr


def test_every_subcommand_has_help():
    for cmd in ("train", "export", "bench", "report", "env", "models"):
        res = subprocess.run([sys.executable, "-m", "edgebench", cmd, "--help"], capture_output=True, text=True)
        assert res.returncode == 0 and "usage: edgebench " + cmd in res.stdout, cmd


def test_invoke_lists_the_pipeline_and_unfinished_tasks_say_so():
    res = subprocess.run([str(INVOKE), "--list"], cwd=REPO, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    for task in ("train", "export", "build", "deploy", "bench", "report", "demo"):
        assert f"  {task} " in res.stdout or f"  {task}\n" in res.stdout, task
    res = subprocess.run([str(INVOKE), "deploy"], cwd=REPO, capture_output=True, text=True)
    assert res.returncode != 0 and "not implemented yet" in res.stderr


def test_bad_input_is_an_error_not_a_traceback(tmp_path):
    res = subprocess.run([sys.executable, "-m", "edgebench", "bench", "--artifacts", str(tmp_path / "nope"), "--out",
                          str(tmp_path / "r.json")], capture_output=True, text=True)
    assert res.returncode == 2 and "artifacts folder not found" in res.stderr and "Traceback" not in res.stderr
