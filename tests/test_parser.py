"""Face parser F: outputs, T components, CelebAMask-HQ checkpoint loading, gradients."""

from __future__ import annotations

import pytest
import torch

from ml.nets.parser.bisenet import BiSeNet
from ml.nets.parser.celeba import (
    CELEBA_CLASSES,
    ParserCheckpointError,
    load_face_parsing_checkpoint,
)
from ml.nets.parser.model import FaceParser
from rigs import load_spec


def test_outputs_and_facial_representation():
    spec = load_spec()
    parser = FaceParser(spec).eval()
    out = parser(torch.rand(2, 3, 128, 128))
    assert out["logits"].shape == (2, len(spec.labels), 128, 128)
    assert out["f_gb"].shape == (2, 256, 16, 16)
    shapes = {k: tuple(v.shape) for k, v in out["T"].items()}
    assert shapes == {
        "eyes": (2, 128, 16, 16),
        "brows": (2, 128, 16, 16),
        "nose": (2, 256, 8, 8),
        "mouth": (2, 256, 8, 8),
        "face": (2, 512, 4, 4),
    }


def test_beta_scales_its_component():
    spec = load_spec()
    torch.manual_seed(0)
    a = FaceParser(spec).eval()
    b = FaceParser(spec).eval()
    b.load_state_dict(a.state_dict())
    b.cfg.beta["mouth"] = 2.0
    x = torch.rand(1, 3, 64, 64)
    ta, tb = a(x)["T"], b(x)["T"]
    torch.testing.assert_close(tb["mouth"], 2 * ta["mouth"])
    torch.testing.assert_close(tb["eyes"], ta["eyes"])


def test_loads_face_parsing_pytorch_checkpoint(tmp_path):
    """A checkpoint written in the 79999_iter.pth layout (DataParallel prefix included)."""
    spec = load_spec()
    torch.manual_seed(1)
    net = BiSeNet(len(CELEBA_CLASSES)).eval()
    path = tmp_path / "79999_iter.pth"
    torch.save({f"module.{k}": v for k, v in net.state_dict().items()}, path)
    parser = load_face_parsing_checkpoint(path, spec)
    x = torch.rand(1, 3, 64, 64)
    raw = net((x - parser.mean) / parser.std)["logits"]
    ours = parser(x)["logits"]
    hair = spec.labels.index("hair")
    expected = raw[:, [CELEBA_CLASSES.index("hair"), CELEBA_CLASSES.index("hat")]].logsumexp(1)
    torch.testing.assert_close(ours[:, hair], expected)
    torch.testing.assert_close(
        ours[:, spec.labels.index("nose")], raw[:, CELEBA_CLASSES.index("nose")]
    )


def test_foreign_checkpoint_is_named(tmp_path):
    path = tmp_path / "other.pth"
    torch.save({"fc.weight": torch.zeros(3, 3)}, path)
    with pytest.raises(ParserCheckpointError, match="other.pth"):
        load_face_parsing_checkpoint(path, load_spec())


def test_parser_is_differentiable_to_the_image():
    parser = FaceParser(load_spec()).eval().requires_grad_(False)
    x = torch.rand(1, 3, 64, 64, requires_grad=True)
    out = parser(x)
    loss = sum(t.abs().mean() for t in out["T"].values()) + out["f_gb"].mean()
    loss.backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
