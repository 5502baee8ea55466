"""Render the sensitivity set for generator evaluation (runs inside Blender).

    python ml/blender/render_sensitivity.py -- --out data/sensitivity.npz [--bases 4 --size 128]

For a few base faces (random identity, neutral expression, near-frontal pose), every AU,
pose and gaze parameter is rendered at a low and a high value with the others fixed:
AUs at 0 and 1 (AD30 at 0 and 1), pose and gaze at 0 and their range maximum. The
evaluation compares the renderer's change image with the generator's.
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import argparse
import os

import bpy
import numpy as np

from ml.data.sampling import SamplingConfig, sample_params
from ml.render_pairs import PairRenderer
from rigs import RigSpec, load_spec

GROUPS = ("au", "pose", "gaze")


def sensitivity_params(spec: RigSpec) -> list[tuple[int, float, float]]:
    """(parameter index, low, high) for every AU, pose and gaze parameter."""
    out = []
    for p in spec.params:
        if p.group in GROUPS:
            lo, hi = (0.0, 1.0) if p.group == "au" else (p.default, p.max)
            out.append((p.index, lo, hi))
    return out


def main() -> int:
    argv = sys.argv[sys.argv.index("--") + 1 :] if "--" in sys.argv else []
    ap = argparse.ArgumentParser(prog="render_sensitivity")
    ap.add_argument("--out", type=Path, required=True, help="output .npz file")
    ap.add_argument("--bases", type=int, default=4)
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--seed", type=int, default=1000)
    ap.add_argument("--samples", type=int, default=2)
    args = ap.parse_args(argv)
    bpy.ops.wm.read_factory_settings(use_empty=True)
    spec = load_spec()
    renderer = PairRenderer(spec, args.size, args.samples)
    tests = sensitivity_params(spec)
    cfg = SamplingConfig(au_mode="sparse", sparse_active=(0, 0), max_yaw=5, max_pitch=5, max_roll=2)
    images = np.zeros((args.bases, len(tests), 2, args.size, args.size, 3), np.uint8)
    params = np.zeros((args.bases, len(tests), 2, spec.size), np.float32)
    for b in range(args.bases):
        base = sample_params(spec, args.seed, b, cfg)
        base[spec.layout()["gaze"]] = 0.0
        for t, (idx, lo, hi) in enumerate(tests):
            for k, value in enumerate((lo, hi)):
                v = base.copy()
                v[idx] = value
                pair = renderer.render(v, args.seed, b, randomize=False)
                images[b, t, k], params[b, t, k] = pair.image, v
        print(f"base {b + 1}/{args.bases} done", flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    part = args.out.with_name(args.out.name + ".part.npz")
    np.savez_compressed(
        part,
        images=images,
        params=params,
        names=np.array([spec.params[i].name for i, _, _ in tests]),
    )
    os.replace(part, args.out)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
