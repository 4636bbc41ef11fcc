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


def test_invoke_lists_the_pipeline_and_a_task_without_its_input_says_so():
    res = subprocess.run([str(INVOKE), "--list"], cwd=REPO, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    for task in ("train", "export", "build", "deploy", "bench", "report", "demo"):
        assert f"  {task} " in res.stdout or f"  {task}\n" in res.stdout, task
    res = subprocess.run([str(INVOKE), "deploy", "--inventory", str(REPO / "no-such-devices.yaml")], cwd=REPO,
                         capture_output=True, text=True)
    assert res.returncode != 0 and "no-such-devices.yaml" in res.stderr and "Traceback" not in res.stderr


def test_bad_input_is_an_error_not_a_traceback(tmp_path):
    res = subprocess.run([sys.executable, "-m", "edgebench", "bench", "--artifacts", str(tmp_path / "nope"), "--out",
                          str(tmp_path / "r.json")], capture_output=True, text=True)
    assert res.returncode == 2 and "artifacts folder not found" in res.stderr and "Traceback" not in res.stderr


def test_every_family_registers_through_its_own_add_parser():
    import importlib

    from edgebench import cli

    for module in cli.FAMILIES:
        assert module.startswith("edgebench.cli."), module  # all command-line code lives in one package
        assert callable(importlib.import_module(module).add_parser), module
    text = (REPO / "src" / "edgebench" / "cli" / "__init__.py").read_text()
    assert "not landed" not in text and "ModuleNotFoundError" not in text  # no silent fallback


def test_argparse_lives_only_in_the_cli_package():
    src = REPO / "src" / "edgebench"
    users = sorted(str(p.relative_to(src)) for p in src.rglob("*.py")
                   if "import argparse" in p.read_text() and p.parent.name != "cli")
    assert users == [], f"argparse outside edgebench/cli/: {users}"


def test_env_is_fast_and_imports_no_framework_without_check():
    code = ("import sys, io, contextlib, json; from edgebench.cli import main; out = io.StringIO()\n"
            "with contextlib.redirect_stdout(out): rc = main(['env'])\n"
            "heavy = [m for m in sys.modules if m.split('.')[0] in "
            "('tensorflow', 'onnxruntime', 'tf2onnx', 'tensorrt', 'torch', 'keras')]\n"
            "info = json.loads(out.getvalue()); assert rc == 0 and not heavy, heavy\n"
            "import importlib.util as u; has = lambda m: u.find_spec(m) is not None\n"
            "trt = info['backends']['tensorrt']; ort = info['backends']['onnxruntime']\n"
            "assert trt['format'] == 'onnx' and trt['device'] == 'gpu' and trt['checked'] is False\n"
            "assert trt['packages'] == {'tensorrt': has('tensorrt'), 'cuda': has('cuda')}\n"
            "assert ort['importable'] is has('onnxruntime')\n"
            "assert info['backends']['keras']['importable'] is has('tensorflow')")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "can run here (their packages are installed): " in res.stderr


def test_env_check_of_an_unknown_backend_is_a_clear_error():
    res = subprocess.run([sys.executable, "-m", "edgebench", "env", "--check", "warp-drive"], capture_output=True,
                         text=True)
    assert res.returncode == 2 and "unknown backend(s) warp-drive" in res.stderr and "Traceback" not in res.stderr
