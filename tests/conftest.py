"""Test fixtures. Blender tests use the bpy module in-process, each with its own
BLENDER_USER_RESOURCES folder (Blender reads it on every lookup) and a factory-reset scene."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

# Before bpy is first imported anywhere: never touch the user's own Blender config.
os.environ.setdefault("BLENDER_USER_RESOURCES", tempfile.mkdtemp(prefix="aurt_blender_"))

REPO = Path(__file__).resolve().parents[1]
MEDIA = REPO / "tests" / "media"  # sample videos, source in tests/media/README.md
TINY_SIZE = 64  # crop size of the tiny test bundle


@pytest.fixture(scope="session")
def real_media() -> Path:
    """The fetched real-face media folder (`make real-media`; CI fetches them)."""
    from ml.cache import cache_dir

    folder = cache_dir("real_media")
    if not (folder / "talking_short.mp4").is_file():
        pytest.skip(f"real-face media not fetched into {folder}: run `make real-media`")
    return folder


@pytest.fixture
def bpy_clean(tmp_path, monkeypatch):
    """The bpy module with an empty factory scene and a private user-resources folder."""
    import bpy

    monkeypatch.setenv("BLENDER_USER_RESOURCES", str(tmp_path / "blender_user"))
    bpy.ops.wm.read_factory_settings(use_empty=True)
    yield bpy
    bpy.ops.wm.read_factory_settings(use_empty=True)


@pytest.fixture
def face_rig(bpy_clean):
    """A freshly built face rig in an empty scene."""
    from rigs.builder import build_face_rig

    return build_face_rig()


@pytest.fixture(scope="session")
def tiny_pairs(tmp_path_factory) -> Path:
    """24 real rendered pairs at 64 px (through the render_pairs command line)."""
    import subprocess
    import sys

    out = tmp_path_factory.mktemp("tiny_pairs") / "pairs"
    cmd = [
        sys.executable,
        str(REPO / "ml" / "render_pairs.py"),
        "--",
        "--count",
        "24",
        "--size",
        "64",
        "--seed",
        "3",
        "--au-mode",
        "sparse",
        "--out",
        str(out),
    ]
    res = subprocess.run(cmd, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr[-2000:]
    return out


def _tiny_regressor(n_out: int):
    import torch

    return torch.nn.Sequential(
        torch.nn.Conv2d(3, 16, 3, 2, 1),
        torch.nn.ReLU(),
        torch.nn.Conv2d(16, 32, 3, 2, 1),
        torch.nn.ReLU(),
        torch.nn.AdaptiveAvgPool2d(1),
        torch.nn.Flatten(),
        torch.nn.Linear(32, n_out),
    )


@pytest.fixture(scope="session")
def tiny_bundle(tiny_pairs, tmp_path_factory) -> Path:
    """A regressor trained for 40 steps on rendered pairs, exported as a bundle."""
    import torch

    from ml.data.pairs_dataset import PairsDataset
    from ml.export.bundle import IMAGENET_MEAN, IMAGENET_STD, export_bundle
    from rigs import load_spec

    spec = load_spec()
    torch.manual_seed(0)
    model = _tiny_regressor(spec.size)
    data = PairsDataset(tiny_pairs)
    opt = torch.optim.Adam(model.parameters(), 1e-2)
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    span = torch.tensor(spec.maxs() - spec.mins())
    items = [data[i] for i in range(len(data))]
    x = (torch.stack([it["image"] for it in items]) - mean) / std
    y = torch.stack([it["params"] for it in items])
    for _ in range(40):
        loss = ((model(x) - y) / span).abs().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    out = tmp_path_factory.mktemp("bundle") / "tiny.aurt"
    return export_bundle(model, spec, out, TINY_SIZE, {"name": "tiny test regressor"})
