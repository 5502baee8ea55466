"""Atomic folders: a bundle is replaced whole, or not at all."""

from __future__ import annotations

import pytest

from ml.export.atomic import atomic_folder


def test_success_replaces_and_failure_keeps_the_old_folder(tmp_path):
    out = tmp_path / "bundle"
    out.mkdir()
    (out / "model.onnx").write_text("old")
    with pytest.raises(RuntimeError), atomic_folder(out) as tmp:
        (tmp / "model.onnx").write_text("half")
        raise RuntimeError("killed while writing")
    assert (out / "model.onnx").read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["bundle"]  # no temp folder left
    with atomic_folder(out) as tmp:
        (tmp / "model.onnx").write_text("new")
    assert (out / "model.onnx").read_text() == "new"
    assert [p.name for p in tmp_path.iterdir()] == ["bundle"]
