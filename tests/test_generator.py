"""Generator G: sized from the spec and config, every rig parameter reaches the image."""

import pytest
import torch

from ml.data.sampling import sample_params
from ml.nets.generator import Generator, GeneratorConfig
from rigs import load_spec


def _batch(n: int) -> torch.Tensor:
    spec = load_spec()
    return torch.from_numpy(
        __import__("numpy").stack([sample_params(spec, 9, i) for i in range(n)])
    )


@pytest.mark.parametrize("size", [32, 128, 256, 512])
def test_output_size_follows_config(size):
    g = Generator(load_spec(), GeneratorConfig(image_size=size, max_channels=64))
    out = g(_batch(1))
    assert out.shape == (1, 3, size, size) and out.min() >= 0 and out.max() <= 1


def test_input_width_comes_from_the_spec():
    spec = load_spec()
    g = Generator(spec)
    continuous = sum(not p.discrete for p in spec.params)
    assert g.encode.size == continuous + len(spec.brow_styles)


def test_bad_image_size_is_named():
    with pytest.raises(ValueError, match="image_size"):
        Generator(load_spec(), GeneratorConfig(image_size=100))


def test_no_dead_parameter():
    spec = load_spec()
    g = Generator(spec, GeneratorConfig(image_size=32, max_channels=64))
    x = _batch(4).requires_grad_(True)
    out = g(x)
    (out * torch.randn_like(out)).sum().backward()
    grad = x.grad.abs().sum(dim=0)
    dead = [p.name for p in spec.params if not p.discrete and grad[p.index] == 0]
    assert not dead
    style = spec.param("brow_style").index  # discrete: reaches the image by its one-hot
    x2 = x.detach().clone()
    x2[:, style] = (x2[:, style] + 1) % len(spec.brow_styles)
    assert not torch.allclose(g(x2), out)
