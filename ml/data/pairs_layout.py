"""On-disk layout of rendered training pairs (bpy-free): config, shards, atomic writes.

    DIR/dataset.json                 run config (count, size, seed, spec hash, ...)
    DIR/shard_00000/00000000.png     aligned RGB image
    DIR/shard_00000/00000000.mask.png  segmentation label ids (uint8)
    DIR/shard_00000/00000000.npz     params (P,), lm68 (68, 2), lm5 (5, 2) in crop pixels
    DIR/shard_00000/index.json       written when the shard is complete
    DIR/crop_roll.npy                (count,) float32 degrees per pair, NaN where none
                                     (written by ml/blender/crop_rolls.py; model.roll_in_crop)

A pair exists when its .npz exists: it is renamed into place last, so a killed run
never leaves a half-written pair, and a rerun skips what is there.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np

from au_retarget_addon.core.files import atomic_bytes, atomic_path

from ml.errors import MLError

CROP_ROLL_FILE = "crop_roll.npy"


class PairsError(MLError, RuntimeError):
    """A pairs dataset cannot be written or read; the message names the file."""


@dataclass(frozen=True)
class PairsConfig:
    count: int
    size: int = 128
    seed: int = 0
    shard_size: int = 1000
    au_mode: str = "uniform"
    randomize: bool = False
    samples: int = 2
    spec_hash: str = ""


@dataclass
class Pair:
    image: np.ndarray  # (S, S, 3) uint8 RGB
    mask: np.ndarray  # (S, S) uint8 label ids
    lm68: np.ndarray  # (68, 2) float32 crop pixels
    lm5: np.ndarray  # (5, 2)
    params: np.ndarray  # (P,) float32, spec order


def shard_of(cfg: PairsConfig, index: int) -> int:
    return index // cfg.shard_size


def pair_stem(root: Path, cfg: PairsConfig, index: int) -> Path:
    return root / f"shard_{shard_of(cfg, index):05d}" / f"{index:08d}"


def pair_done(root: Path, cfg: PairsConfig, index: int) -> bool:
    return pair_stem(root, cfg, index).with_suffix(".npz").exists()


def shard_indices(cfg: PairsConfig, k: int, n: int) -> dict[int, range]:
    """Shard folders (and their pair indices) that part k of n renders: disjoint, complete."""
    shards = -(-cfg.count // cfg.shard_size)
    return {
        s: range(s * cfg.shard_size, min((s + 1) * cfg.shard_size, cfg.count))
        for s in range(shards)
        if s % n == k
    }


def open_dataset(root: Path, cfg: PairsConfig) -> None:
    """Create DIR/dataset.json, or check that an existing run used the same config."""
    try:
        root.mkdir(parents=True, exist_ok=True)
        probe = root / ".write_test"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise PairsError(f"output folder {root} is not writable: {exc}") from exc
    meta = root / "dataset.json"
    if meta.exists():
        old = json.loads(meta.read_text())
        if old != asdict(cfg):
            diff = {k: (old.get(k), v) for k, v in asdict(cfg).items() if old.get(k) != v}
            raise PairsError(
                f"{meta} was written with another config (old, new): {diff}; use a new --out folder"
            )
        return
    atomic_bytes(meta, json.dumps(asdict(cfg), indent=2).encode())


def _png(img: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(".png", img)
    if not ok:
        raise PairsError("PNG encoding failed")
    return buf.tobytes()


def write_pair(root: Path, cfg: PairsConfig, index: int, pair: Pair) -> None:
    """Write one pair; its .npz goes last, so its presence means the pair is complete."""
    stem = pair_stem(root, cfg, index)
    stem.parent.mkdir(parents=True, exist_ok=True)
    atomic_bytes(stem.with_suffix(".png"), _png(cv2.cvtColor(pair.image, cv2.COLOR_RGB2BGR)))
    atomic_bytes(stem.with_suffix(".mask.png"), _png(pair.mask))
    with atomic_path(stem.with_suffix(".npz")) as tmp:
        np.savez(
            tmp,
            params=pair.params.astype(np.float32),
            lm68=pair.lm68.astype(np.float32),
            lm5=pair.lm5.astype(np.float32),
        )


def write_shard_index(root: Path, cfg: PairsConfig, shard: int) -> None:
    folder = root / f"shard_{shard:05d}"
    stems = sorted(p.stem for p in folder.glob("[0-9]*.npz"))
    atomic_bytes(folder / "index.json", json.dumps({"pairs": stems}).encode())


def read_pair(stem: Path) -> Pair:
    """Load one pair from its path stem (shard folder / 8-digit index)."""
    image = cv2.imread(str(stem.with_suffix(".png")), cv2.IMREAD_COLOR)
    mask = cv2.imread(str(stem.with_suffix(".mask.png")), cv2.IMREAD_UNCHANGED)
    if image is None or mask is None:
        raise PairsError(f"pair {stem} is missing its image or mask")
    with np.load(stem.with_suffix(".npz")) as z:
        return Pair(cv2.cvtColor(image, cv2.COLOR_BGR2RGB), mask, z["lm68"], z["lm5"], z["params"])


def check_spec(root: Path) -> None:
    """Refuse pairs rendered from another version of the rig spec."""
    from rigs.spec import load_spec

    meta = root / "dataset.json"
    if not meta.exists():
        raise PairsError(f"{root} is not a pairs dataset (no dataset.json)")
    stored = json.loads(meta.read_text()).get("spec_hash")
    if stored != load_spec().hash():
        raise PairsError(
            f"{meta}: pairs were rendered from rig spec {stored}, the current spec "
            f"is {load_spec().hash()}; render them again"
        )


def read_config(root: Path) -> PairsConfig:
    """The config a dataset was rendered with (DIR/dataset.json)."""
    meta = root / "dataset.json"
    if not meta.exists():
        raise PairsError(f"{root} is not a pairs dataset (no dataset.json)")
    return PairsConfig(**json.loads(meta.read_text()))


def write_crop_rolls(root: Path, rolls: np.ndarray) -> None:
    """DIR/crop_roll.npy, atomically."""
    with atomic_path(root / CROP_ROLL_FILE) as tmp:
        np.save(tmp, np.asarray(rolls, np.float32))


def read_crop_rolls(root: Path) -> np.ndarray:
    """(count,) crop rolls in degrees; NaN for pairs that had none when it was written."""
    path = root / CROP_ROLL_FILE
    if not path.is_file():
        raise PairsError(
            f"{path} is missing; write it with `python ml/blender/crop_rolls.py -- --pairs {root}`"
        )
    rolls = np.load(path)
    count = read_config(root).count
    if rolls.shape != (count,):
        raise PairsError(f"{path} holds {rolls.shape} values, the dataset has {count} pairs")
    return rolls


def list_pairs(root: Path) -> list[Path]:
    """Stems of all complete pairs under a dataset folder, in index order."""
    if not (root / "dataset.json").exists():
        raise PairsError(f"{root} is not a pairs dataset (no dataset.json)")
    return sorted(p.with_suffix("") for p in root.glob("shard_*/[0-9]*.npz"))
