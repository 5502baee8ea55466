"""F's features of the real-face set's crops (and of their mirror images), per person and
clip, computed once and cached outside the checkout, for the five losses on real frames
(ml/train/landmark_five_losses.py) and for reading held-out people without exporting a bundle.

The crops are the tracker's own (MTCNN and the 5-point alignment, ml/data/real_face_set.py), at
the size the pairs were rendered at, so F sees real frames exactly as it sees renders.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from ml.cache import cache_dir
from ml.data.real_face_set import build, load_crops, split_clips
from ml.data.real_media import RealFaceSet
from ml.nets.landmark_features import LandmarkF
from ml.train.landmark_regressor import FEATURES_VERSION, feature_columns


def _key(crops_key: str, f: LandmarkF, size: int) -> str:
    h = hashlib.sha256(f"{FEATURES_VERSION}:{f.net.model}:{size}:{crops_key}".encode())
    return h.hexdigest()[:16]


def crop_features(
    crops: dict[str, np.ndarray], f: LandmarkF, label: str, batch: int = 32
) -> dict[str, np.ndarray]:
    """F's outputs of each crop (uint8 RGB) and of its mirror image (`flipped_<name>`),
    with the crops' frames, times and alignment rolls."""
    cols: dict[str, list[np.ndarray]] = {}
    images = crops["crops"]
    f.eval()
    with torch.no_grad():
        for s in tqdm(range(0, len(images), batch), desc=f"F on {label}", unit="batch",
                      leave=False):  # fmt: skip
            x = torch.from_numpy(np.ascontiguousarray(images[s : s + batch]))
            feature_columns(f, x.permute(0, 3, 1, 2).float() / 255.0, cols)
    out = {k: np.concatenate(v) for k, v in cols.items()}
    for k in ("frames", "times", "rolls"):
        out[k] = np.asarray(crops[k])
    return out


def real_features(
    f: LandmarkF, rfs: RealFaceSet, media: Path, crops_cache: Path, split: str, size: int,
    clips: list[str] | None = None,
) -> dict[tuple[str, str], dict[str, np.ndarray]]:  # fmt: skip
    """(clip, person) -> F's features of that person's crops in that clip, for the split's
    people; crops are built where missing, features cached under the crops' key."""
    pairs = split_clips(rfs, split, clips)
    if not pairs:
        return {}
    build(rfs, media, crops_cache, (size,), sorted({c for c, _ in pairs}))
    result = {}
    for clip, person in pairs:
        crops = load_crops(crops_cache, size, clip, person)
        out = cache_dir("features", f"real-{clip}.{person}-{_key(str(crops['key']), f, size)}.npz")
        if out.is_file():
            with np.load(out) as z:
                result[(clip, person)] = {k: z[k] for k in z.files}
            continue
        feats = crop_features(crops, f, f"{clip} {person}")
        out.parent.mkdir(parents=True, exist_ok=True)
        part = out.with_name(f".{out.name}.part.npz")
        np.savez(part, **feats)
        part.replace(out)
        result[(clip, person)] = feats
    return result
