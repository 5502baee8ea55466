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
