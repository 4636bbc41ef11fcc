"""Fixtures for the export integration tests: a small Keras model (ResNet18, fixed random weights) and
one export of it to every default format, shared by the tests that only read the results.

(The session-level trained ResNet34 is `trained_model_dir` in tests/conftest.py; the export tests use
a smaller model so the whole export suite stays within a few minutes on 2 cores.)
"""
from __future__ import annotations

from pathlib import Path

import pytest

PARITY_IMAGES = 128
CALIB_IMAGES = 64


@pytest.fixture(scope="session")
def small_model_path(tmp_path_factory) -> Path:
    """model.keras of a ResNet18 (ImageNet stem) with seeded random weights."""
    pytest.importorskip("tensorflow")
    import random

    import numpy as np
    import tensorflow as tf

    from edgebench import models

    # not tf.keras.utils.set_random_seed: Keras 2.12's seed generator calls randint(1, 1e9) with a float bound
    # (a DeprecationWarning per layer)
    random.seed(7)
    np.random.seed(7)
    tf.random.set_seed(7)
    model = models.build("resnet18")
    path = tmp_path_factory.mktemp("small-model") / "model.keras"
    model.save(path)
    return path


@pytest.fixture
def model_copy(small_model_path, tmp_path) -> Path:
    """The small model copied into a fresh folder (a test may export next to it)."""
    import shutil

    dst = tmp_path / "model.keras"
    shutil.copy(small_model_path, dst)
    return dst


@pytest.fixture(scope="session")
def exported(small_model_path, cifar_source, tmp_path_factory):
    """(folder, manifest) after exporting the small model to every default format.

    INT8 agreement on random weights means little (near-tied logits), so its threshold is set to 0
    here; the pass/fail marking itself is tested separately with a threshold that cannot be met."""
    import shutil

    from edgebench.export import export_all

    out = tmp_path_factory.mktemp("exported")
    model = out / "model.keras"
    shutil.copy(small_model_path, model)
    manifest = export_all(model, data_source=cifar_source, parity_images=PARITY_IMAGES, calib_images=CALIB_IMAGES,
                          thresholds={"int8": {"min_top1_agreement": 0.0}}, log=None)
    return out, manifest


@pytest.fixture(scope="session")
def bench_artifacts(tmp_path_factory, trained_model_dir, cifar_source):
    """The trained ResNet34 exported once per session (ONNX and TFLite FP32, OpenVINO FP32 and NNCF INT8 on 128
    calibration images, parity on 128 test images), shared by every integration test that benchmarks it (bench,
    docker, deploy fleet, openvino): read it, never write into it (a test that tampers copies it first)."""
    import shutil

    from edgebench.export import export_all

    out = tmp_path_factory.mktemp("bench-artifacts")
    shutil.copy2(trained_model_dir / "model.keras", out / "model.keras")
    # the INT8 gate is off here (recorded in the manifest): the session's model is trained for one epoch on
    # 2,048 images, its logits near-tied, and its INT8 agreement with Keras varies from run to run (0.88 to
    # 0.97 seen) around the default gate of 0.98; test_openvino.py bounds it instead
    export_all(out / "model.keras", formats=["onnx-fp32", "tflite-fp32", "openvino-fp32", "openvino-int8"],
               data_source=cifar_source, parity_images=128, calib_images=128,
               thresholds={"int8": {"min_top1_agreement": 0.0}}, log=None)
    return out


@pytest.fixture(scope="module")
def rig():
    """The deploy rig (tests/plugins/deploy_rig.py): a registry and two fake devices, one per test module
    (the fault tests kill engines, so modules do not share one)."""
    import deploy_rig  # on sys.path through tests/conftest.py

    why = deploy_rig.missing()
    if why:
        pytest.skip(why)
    r = deploy_rig.Rig(2)
    try:
        r.start()
        yield r
    finally:
        r.stop()


@pytest.fixture(scope="session")
def x86_cpu_image():
    """The real x86-cpu image, built (and smoke-tested) once per session with the bundle the host's pip trusts,
    exactly as `invoke build --target x86-cpu` picks it; shared by the docker, train-in-container and deploy
    tests, which used to build it again each. It stays tagged edgebench:<version>-x86-cpu for reuse."""
    import sys

    from edgebench.docker import build as dbuild
    from edgebench.docker import cabundle, targets
    from edgebench.docker.client import api_client

    base = targets.load("x86-cpu").base_image
    try:
        api_client().inspect_image(base)
    except Exception:
        pytest.fail(f"{base} is missing: run `bash .ci/docker-setup.sh` (debootstrap + docker import)")
    return dbuild.build_image("x86-cpu", ca_bundle=cabundle.resolve(None), smoke_test=True, echo=sys.stderr)
