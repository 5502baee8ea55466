"""Unlabeled real faces for regressor training: images and video frames, detected and
aligned with the tracker's own detector and 5-point alignment, cached as one .npz.

    python -m ml.data.real_faces --inputs tests/media data/my_videos --out data/real_faces.npz

Videos are sampled every `--step` frames; frames without exactly one confident face are
skipped (counted in the summary), so no crop depends on which face was picked.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from au_retarget_addon.core.align import align_face
from au_retarget_addon.core.detect import DEFAULT_MODEL_DIR, FaceDetector
from au_retarget_addon.core.video import VideoReader

from ml.errors import MLError, exit_on_error

VIDEO_EXT = {".mp4", ".mov", ".avi", ".mkv", ".webm"}
IMAGE_EXT = {".jpg", ".jpeg", ".png", ".bmp"}


class RealFacesError(MLError, RuntimeError):
    """Real-face inputs are missing or yield no face (names the folder or file)."""


def media_files(inputs: list[Path]) -> list[Path]:
    files: list[Path] = []
    for root in inputs:
        if not root.exists():
            raise RealFacesError(f"input {root} does not exist")
        paths = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
        files += [p for p in paths if p.suffix.lower() in VIDEO_EXT | IMAGE_EXT]
    return files


def media_frames(path: Path, step: int) -> Iterator[tuple[int, np.ndarray]]:
    if path.suffix.lower() in IMAGE_EXT:
        bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if bgr is not None:
            yield 0, cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        return
    with VideoReader(path) as v:
        for idx, _, rgb in v.frames(step=step):
            yield idx, rgb


def collect(
    inputs: list[Path], detector: FaceDetector, size: int, step: int
) -> tuple[np.ndarray, list[str], dict[str, int]]:
    """Aligned crops (N, size, size, 3) uint8, their source 'file#frame', and counts."""
    crops, names = [], []
    counts = {"frames": 0, "no_face": 0, "several_faces": 0}
    for path in media_files(inputs):
        for idx, rgb in media_frames(path, step):
            counts["frames"] += 1
            dets = [d for d in detector.detect(rgb) if d.score >= 0.95]
            if len(dets) != 1:
                counts["no_face" if not dets else "several_faces"] += 1
                continue
            crops.append(align_face(rgb, dets[0].points, size)[0])
            names.append(f"{path.name}#{idx}")
    if not crops:
        raise RealFacesError(f"no usable face in {counts['frames']} frames of {inputs}")
    return np.stack(crops), names, counts


class RealFaces(Dataset):
    """Items: {"image": (3, S, S) float in [0, 1]} from a real_faces .npz."""

    def __init__(self, path: str | Path, split: str = "all", holdout_every: int = 10) -> None:
        path = Path(path)
        if not path.is_file():
            raise RealFacesError(f"real-face cache {path} does not exist; run ml.data.real_faces")
        with np.load(path) as z:
            crops = z["crops"]
        idx = np.arange(len(crops))
        keep = {
            "all": idx,
            "heldout": idx[idx % holdout_every == 0],
            "train": idx[idx % holdout_every != 0],
        }[split]
        self.crops = crops[keep]

    def __len__(self) -> int:
        return len(self.crops)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        img = torch.from_numpy(np.ascontiguousarray(self.crops[i].transpose(2, 0, 1)))
        return {"image": img.float() / 255.0}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m ml.data.real_faces", description=__doc__.split("\n\n")[0]
    )
    ap.add_argument("--inputs", type=Path, nargs="+", required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--step", type=int, default=2, help="video frame step")
    ap.add_argument("--detector", type=Path, default=DEFAULT_MODEL_DIR)
    args = ap.parse_args(argv)
    crops, names, counts = collect(args.inputs, FaceDetector(args.detector), args.size, args.step)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    part = args.out.with_name(args.out.name + ".part.npz")
    np.savez_compressed(part, crops=crops, names=np.array(names))
    os.replace(part, args.out)
    print(f"wrote {args.out}: {len(crops)} faces from {counts}")
    return 0


if __name__ == "__main__":
    sys.exit(exit_on_error("python -m ml.data.real_faces", main))
