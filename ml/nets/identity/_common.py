"""Helpers shared by the identity networks: the error type, sha256 checks, atomic writes and
input resizing.

Kept apart from `__init__` so the network modules can import it without a cycle.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

import torch
import torch.nn.functional as F

from au_retarget_addon.core.files import new_file_mode
from ml.errors import MLError


class IdentityWeightsError(MLError, RuntimeError):
    """Identity-network weights missing, not the pinned file, or not the expected layout.

    Messages name the file, so a user knows which download or checkpoint to replace.
    """


def sha256_hex(data: bytes) -> str:
    """Hex sha256 of `data`."""
    return hashlib.sha256(data).hexdigest()


def check_sha256(data: bytes, expected: str, name: str) -> None:
    """Refuse bytes that are not the pinned file: a changed upstream package must never
    silently change the identity loss."""
    digest = sha256_hex(data)
    if digest != expected:
        raise IdentityWeightsError(f"{name}: sha256 {digest} != expected {expected}")


def atomic_torch_save(obj: object, path: Path) -> None:
    """torch.save to a temp file in the same folder, then rename: a killed fetch never
    leaves a half-written file where a loader would find it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        torch.save(obj, tmp)
        tmp.chmod(new_file_mode())  # mkstemp makes it owner-only
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)


def atomic_write_text(path: Path, text: str) -> None:
    """Write text through a temp file and a rename (same reason as atomic_torch_save)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    part = path.with_name(f".{path.name}.part")
    part.write_text(text, encoding="utf-8")
    part.replace(path)


def fit_size(x: torch.Tensor, size: int) -> torch.Tensor:
    """Bilinear resize of (B, C, H, W) to (size, size) when needed; differentiable, so the
    identity loss can run on the project's own crop size."""
    if x.shape[-2:] == (size, size):
        return x
    return F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
