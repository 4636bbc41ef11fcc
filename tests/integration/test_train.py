"""Training on real CIFAR-10 (a small subset): outputs, metadata, and resume after a hard kill."""
import json
import os
import signal
import subprocess
import sys
import time

import pytest

pytestmark = pytest.mark.slow


def test_trained_model_and_metadata(trained_model_dir, cifar_source):
    meta = json.loads((trained_model_dir / "train.json").read_text())
    assert (trained_model_dir / "model.keras").exists()
    assert meta["data"]["source"].endswith("cifar10-jpeg.zip") and meta["data"]["kind"] == "image-zip"
    assert len(meta["data"]["checksum"]) == 64
    assert meta["recipe"]["batch_size"] == 64 and meta["data"]["train_used"] == 2048
    assert len(meta["history"]) == 1 and {"loss", "accuracy", "val_accuracy"} <= set(meta["history"][0])
    assert 0.0 <= meta["test_top1"] <= 1.0 and meta["versions"]["tensorflow"].startswith("2.12")
    assert meta["complexity"]["params"] == 21_306_826
    # the saved model is for inference: no optimizer state (a third of the size of one with AdamW slots)
    assert (trained_model_dir / "model.keras").stat().st_size < 100e6


def test_resume_after_kill(tmp_path, cifar_source):
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "edgebench", "train", "--data", cifar_source, "--out", str(out), "--model", "resnet18",
           "--epochs", "3", "--train-limit", "512", "--test-limit", "128", "--no-eval-each-epoch"]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    state = out / "train_state.json"
    deadline = time.time() + 240
    while time.time() < deadline and proc.poll() is None:
        if state.exists() and json.loads(state.read_text())["completed_epochs"] >= 1:
            break
        time.sleep(0.2)
    assert proc.poll() is None, "training finished before it could be killed: " + proc.stderr.read().decode()[-2000:]
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done_before = json.loads(state.read_text())["completed_epochs"]
    assert 1 <= done_before < 3 and not (out / "model.keras").exists()

    res = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    assert f"resuming {out} after epoch {done_before}/3" in res.stderr
    meta = json.loads((out / "train.json").read_text())
    assert [h["epoch"] for h in meta["history"]] == [1, 2, 3]
    assert (out / "model.keras").exists()

    # a different recipe in the same folder is refused rather than silently mixed
    res = subprocess.run(cmd + ["--lr", "0.1"], env=env, capture_output=True, text=True,
                         timeout=120)
    assert res.returncode != 0 and "another configuration" in res.stderr


def test_two_trainings_in_one_process(tmp_path, cifar_source):
    """train() twice in one process: the learning-rate schedule is registered with Keras once, not per call
    (Keras refuses a second registration of the same name: 'WarmupCosine already registered')."""
    from edgebench.train import TrainConfig, train

    for i in range(2):
        cfg = TrainConfig(model="resnet18-half", epochs=1, batch_size=32, train_limit=64, test_limit=32)
        train(cfg, str(tmp_path / f"run{i}"), data_source=cifar_source, progress=False)
        assert (tmp_path / f"run{i}" / "model.keras").exists()
