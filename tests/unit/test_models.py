import pytest

from edgebench import models


def test_registry():
    assert {"resnet34", "resnet34-cifar", "resnet18"} <= set(models.available())
    with pytest.raises(KeyError, match="unknown model 'resnet99'"):
        models.get("resnet99")


# Fixed numbers: a change to the architecture shows up here.
@pytest.mark.parametrize("name,params,macs", [
    ("resnet34", 21_306_826, 74_765_312),          # 7x7/2 stem + max-pool: 8x8 maps after the stem
    ("resnet34-cifar", 21_299_146, 1_159_402_496),  # 3x3/1 stem: 32x32 maps; the seed study's ~1.16 GMAC
])
def test_params_and_flops(name, params, macs):
    m = models.build(name)
    c = models.count_flops(m)
    assert c["params"] == params
    assert c["macs"] == macs and c["flops"] == 2 * macs
    assert m.input_shape == (None, 32, 32, 3) and m.output_shape == (None, 10)


@pytest.mark.parametrize("name", models.available())
def test_complexity_without_a_build_matches_a_build(name):
    assert models.complexity(name) == models.count_flops(models.build(name))


def test_models_command_builds_nothing():
    import subprocess
    import sys
    import time

    t0 = time.perf_counter()
    code = ("import sys; from edgebench.cli import main; rc = main(['models']); "
            "assert 'tensorflow' not in sys.modules, 'edgebench models imported TensorFlow'; sys.exit(rc)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "resnet18-half" in out.stdout and "21.31 M params" in out.stdout
    assert time.perf_counter() - t0 < 10  # the command's own budget is 2 s; this bounds a loaded CI machine


def test_normalisation_is_inside_the_graph():
    import numpy as np

    m = models.build("resnet18")
    assert m.layers[1].name == "normalize"
    x = np.full((1, 32, 32, 3), models.CIFAR10_MEAN, dtype=np.float32)
    assert np.allclose(m.layers[1](x).numpy(), 0.0, atol=1e-4)  # the dataset mean maps to zero
