"""Each rendered pair's crop roll: the in-plane angle its 5-point alignment took out of
the face (runs inside Blender, like ml/render_pairs.py).

    python ml/blender/crop_rolls.py -- --pairs data/pairs
    blender -b -P ml/blender/crop_rolls.py -- --pairs data/pairs

The rig is posed for every stored pair as render_pairs posed it (same parameters, same
seeded camera and light) and the alignment matrix is computed again without rendering
(12,000 pairs took 89 s on 2 cores). The pair's stored 5 points must come out again to
within 0.05 px, so the angles belong to these images. Writes DIR/crop_roll.npy: degrees in the rig's
head_roll sign, NaN for pairs not rendered yet. A regressor with model.roll_in_crop learns
head_roll minus this angle; the tracker adds its own crop's angle back. A killed run
writes nothing and starts again.
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a Blender script: make the repo importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import argparse
import time

import bpy
import numpy as np

from au_retarget_addon.core.align import crop_roll, transform_points
from ml.data.pairs_layout import (
    PairsError,
    check_spec,
    list_pairs,
    read_config,
    read_pair,
    write_crop_rolls,
)
from ml.render_pairs import PairRenderer
from rigs import load_spec

TOLERANCE_PX = 0.05  # stored against recomputed 5 points


def crop_rolls(root: Path) -> np.ndarray:
    """(count,) crop rolls of the pairs under `root` (NaN where a pair is missing)."""
    check_spec(root)
    cfg = read_config(root)
    spec = load_spec()
    renderer = PairRenderer(spec, cfg.size, cfg.samples)
    rolls = np.full(cfg.count, np.nan, np.float32)
    stems = list_pairs(root)
    start = time.perf_counter()
    for k, stem in enumerate(stems):
        pair, index = read_pair(stem), int(stem.name)
        _, xy, _, m = renderer.place(pair.params, cfg.seed, index, cfg.randomize)
        err = np.abs(transform_points(m, renderer.mesh.lm5_of(xy)) - pair.lm5).max()
        if err > TOLERANCE_PX:
            raise PairsError(
                f"pair {stem}: its stored 5 points are {err:.3f} px from the rig's posed "
                "again; the rig or the pair changed since rendering. Render the pairs again"
            )
        rolls[index] = crop_roll(m)
        if (k + 1) % 200 == 0 or k + 1 == len(stems):
            rate = (k + 1) / (time.perf_counter() - start)
            print(f"\r{k + 1}/{len(stems)} pairs  {rate:.0f} pairs/s", end="", flush=True)
    print()
    return rolls


def main() -> int:
    argv = sys.argv[sys.argv.index("--") + 1 :] if "--" in sys.argv else []
    ap = argparse.ArgumentParser(prog="crop_rolls", description=__doc__.split("\n\n")[0])
    ap.add_argument("--pairs", type=Path, required=True, help="pairs dataset folder")
    args = ap.parse_args(argv)
    bpy.ops.wm.read_factory_settings(use_empty=True)
    try:
        rolls = crop_rolls(args.pairs)
        write_crop_rolls(args.pairs, rolls)
    except PairsError as exc:
        print(f"crop_rolls: error: {exc}", file=sys.stderr)
        return 2
    done = np.isfinite(rolls)
    print(
        f"wrote {args.pairs / 'crop_roll.npy'}: {int(done.sum())} pairs, "
        f"crop roll {np.nanmin(rolls):.1f} to {np.nanmax(rolls):.1f} degrees"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
