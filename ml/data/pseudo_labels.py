"""Pseudo-labels for real faces: MediaPipe face-mesh landmarks drawn as the rig's labels on
the aligned crops the tracker would make (parser training and evaluation on real frames).

    python -m ml.data.pseudo_labels --inputs tests/media my_videos/ --out data/real_labels.npz

Frames are detected and aligned with the tracker's own MTCNN and 5-point alignment; the
478 face-mesh landmarks (mediapipe 0.10.21, an optional training-only dependency: `make
pseudo-labels-deps`) are mapped into the crop and filled as polygons: the face oval as
skin, then nose, brows, eyes, lips and the inside of the mouth. Pixels outside the face
oval are 255 (unknown: hair, neck or background), and the losses and mIoU ignore them.
Left and right are the face's own, as in the rig (MediaPipe's LEFT is the subject's left).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from au_retarget_addon.core.align import align_face
from au_retarget_addon.core.detect import DEFAULT_MODEL_DIR, FaceDetector
from rigs.spec import load_spec

from ml.errors import MLError, exit_on_error
from ml.data.real_faces import media_files, media_frames

UNKNOWN = 255


class PseudoLabelError(MLError, RuntimeError):
    """MediaPipe is missing, or the inputs yield no labelled face (names the input)."""


class LabelledFaces(Dataset):
    """Items {"image": (3, S, S) float in [0, 1], "mask": (S, S) long} from a
    pseudo_labels .npz. Held out: the last `holdout` share of each source's frames (a
    contiguous stretch, so held-out frames are not neighbours of training frames)."""

    def __init__(self, path: str | Path, split: str = "all", holdout: float = 0.2) -> None:
        path = Path(path)
        if not path.is_file():
            raise PseudoLabelError(f"pseudo-label file {path} does not exist; run ml.data.pseudo_labels")
        with np.load(path) as z:
            self.images, self.masks, names = z["images"], z["masks"], list(z["names"])
        source = [str(n).rsplit("#", 1)[0] for n in names]
        rank = np.zeros(len(names))
        for s in set(source):
            idx = [i for i, x in enumerate(source) if x == s]
            rank[idx] = np.arange(len(idx)) / len(idx)
        keep = {"all": rank >= 0, "train": rank < 1 - holdout, "heldout": rank >= 1 - holdout}
        if split not in keep:
            raise ValueError(f"split must be all, train or heldout, not {split!r}")
        self.index = np.flatnonzero(keep[split])

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, i: int) -> dict:
        j = int(self.index[i])
        image = torch.from_numpy(self.images[j].transpose(2, 0, 1).copy()).float() / 255.0
        return {"image": image, "mask": torch.from_numpy(self.masks[j].astype(np.int64))}


def _loops(edges: Iterable[tuple[int, int]]) -> list[list[int]]:
    """Chains of vertex ids from an undirected edge set (closed loops or open paths)."""
    adj: dict[int, list[int]] = {}
    for a, b in edges:
        adj.setdefault(a, []).append(b)
        adj.setdefault(b, []).append(a)
    seen: set[int] = set()
    chains = []
    ends = [v for v, n in adj.items() if len(n) == 1]  # open paths start at an end
    for start in ends + sorted(adj):
        if start in seen:
            continue
        chain, prev, cur = [start], None, start
        seen.add(start)
        while True:
            nxt = [n for n in adj[cur] if n != prev and n not in seen]
            if not nxt:
                break
            prev, cur = cur, nxt[0]
            chain.append(cur)
            seen.add(cur)
        chains.append(chain)
    return chains


@lru_cache(maxsize=1)
def _regions() -> dict[str, list[list[int]]]:
    """Landmark polygons per region, from MediaPipe's own connection sets."""
    try:
        from mediapipe.python.solutions import face_mesh_connections as c
    except ImportError as exc:
        raise PseudoLabelError(
            "mediapipe is not installed: run `make pseudo-labels-deps` (mediapipe 0.10.21 "
            "without its opencv-contrib dependency, so one OpenCV remains)"
        ) from exc

    return {
        "oval": _loops(c.FACEMESH_FACE_OVAL),
        "lips": _loops(c.FACEMESH_LIPS),
        "nose": [sorted({v for e in c.FACEMESH_NOSE for v in e})],
        "eye_l": _loops(c.FACEMESH_LEFT_EYE),
        "eye_r": _loops(c.FACEMESH_RIGHT_EYE),
        "brow_l": _loops(c.FACEMESH_LEFT_EYEBROW),  # two open chains: lower and upper edge
        "brow_r": _loops(c.FACEMESH_RIGHT_EYEBROW),
    }


def _fill(mask: np.ndarray, pts: np.ndarray, value: int, hull: bool = False) -> None:
    pts = pts.astype(np.float32)
    poly = cv2.convexHull(pts) if hull else pts
    cv2.fillPoly(mask, [np.round(poly).astype(np.int32)], (int(value),))


def _split_lip(outer: np.ndarray, inner: np.ndarray) -> tuple[np.ndarray, ...]:
    """Upper lip, lower lip and mouth opening polygons from the outer and inner lip loops:
    each loop is cut at its leftmost and rightmost points into upper and lower halves."""

    def halves(loop: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        i, j = int(np.argmin(loop[:, 0])), int(np.argmax(loop[:, 0]))
        rolled = np.roll(loop, -i, axis=0)
        k = (j - i) % len(loop)
        a, b = rolled[: k + 1], np.vstack([rolled[k:], rolled[:1]])
        return (a, b) if a[:, 1].mean() < b[:, 1].mean() else (b, a)  # (upper, lower)

    ou, ol = halves(outer)
    iu, il = halves(inner)

    def band(o: np.ndarray, i: np.ndarray) -> np.ndarray:  # same direction: left to right
        o = o if o[0, 0] < o[-1, 0] else o[::-1]
        i = i if i[0, 0] < i[-1, 0] else i[::-1]
        return np.vstack([o, i[::-1]])

    return band(ou, iu), band(ol, il), inner


def label_mask(points: np.ndarray, size: int, labels: tuple[str, ...]) -> np.ndarray:
    """(478, 2) face-mesh points in crop pixels -> (size, size) uint8 label mask."""
    reg = _regions()
    mask = np.full((size, size), UNKNOWN, np.uint8)
    for loop in reg["oval"]:
        _fill(mask, points[loop], labels.index("skin"))
    _fill(mask, points[reg["nose"][0]], labels.index("nose"), hull=True)
    for name in ("brow_l", "brow_r"):
        a, b = (points[chain] for chain in reg[name])
        b = b if np.linalg.norm(a[-1] - b[0]) < np.linalg.norm(a[-1] - b[-1]) else b[::-1]
        _fill(mask, np.vstack([a, b]), labels.index(name))  # one edge out, the other back
    for name in ("eye_l", "eye_r"):
        for loop in reg[name]:
            _fill(mask, points[loop], labels.index(name))
    outer, inner = sorted((points[loop] for loop in reg["lips"]), key=lambda p: -np.ptp(p[:, 0]))
    upper, lower, opening = _split_lip(outer, inner)
    _fill(mask, upper, labels.index("upper_lip"))
    _fill(mask, lower, labels.index("lower_lip"))
    _fill(mask, opening, labels.index("inner_mouth"))
    return mask


def collect(
    inputs: list[Path], size: int, step: int, detector: FaceDetector
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Aligned crops (N, S, S, 3), pseudo-label masks (N, S, S) and 'file#frame' names."""
    import mediapipe as mp

    labels = load_spec().labels
    crops, masks, names = [], [], []
    mesh = mp.solutions.face_mesh.FaceMesh(static_image_mode=True, refine_landmarks=True)
    for path in media_files(inputs):
        for idx, rgb in media_frames(path, step):
            dets = detector.detect(rgb)
            found = mesh.process(rgb).multi_face_landmarks
            if len(dets) != 1 or not found or len(found) != 1:
                continue  # no face, or several: which mesh belongs to which box is unclear
            h, w = rgb.shape[:2]
            pts = np.array([(p.x * w, p.y * h) for p in found[0].landmark])
            crop, m = align_face(rgb, dets[0].points, size)
            crop_pts = pts @ m[:, :2].T + m[:, 2]
            crops.append(crop)
            masks.append(label_mask(crop_pts, size, labels))
            names.append(f"{path.name}#{idx}")
    mesh.close()
    if not crops:
        raise PseudoLabelError(f"no single labelled face in {[str(p) for p in inputs]}")
    return np.stack(crops), np.stack(masks), names


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m ml.data.pseudo_labels", description=__doc__.split("\n\n")[0]
    )
    ap.add_argument("--inputs", type=Path, nargs="+", required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--step", type=int, default=1, help="video frame step")
    args = ap.parse_args(argv)
    crops, masks, names = collect(
        args.inputs, args.size, args.step, FaceDetector(DEFAULT_MODEL_DIR)
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(args.out, images=crops, masks=masks, names=np.array(names))
    print(f"wrote {args.out}: {len(crops)} pseudo-labelled crops at {args.size} px")
    return 0


if __name__ == "__main__":
    sys.exit(exit_on_error("python -m ml.data.pseudo_labels", main))
