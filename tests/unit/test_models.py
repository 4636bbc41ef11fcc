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


def test_normalisation_is_inside_the_graph():
    import numpy as np

    m = models.build("resnet18")
    assert m.layers[1].name == "normalize"
    x = np.full((1, 32, 32, 3), models.CIFAR10_MEAN, dtype=np.float32)
    assert np.allclose(m.layers[1](x).numpy(), 0.0, atol=1e-4)  # the dataset mean maps to zero
