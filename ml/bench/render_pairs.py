"""Benchmark of the pair renderer (runs inside Blender): pairs per second at 128 px and
the share of time outside Blender's render call, against an image-only render baseline
measured in the same run.

    python ml/bench/render_pairs.py -- --pairs 60
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import argparse
import shutil
import statistics
import tempfile
import time

import bpy

from ml.data.pairs_layout import PairsConfig, write_pair
from ml.data.sampling import sample_params
from ml.render_pairs import PairRenderer
from rigs import load_spec
from rigs.render_setup import RENDER_CALL_SECONDS, render_array


def main() -> int:
    argv = sys.argv[sys.argv.index("--") + 1 :] if "--" in sys.argv else []
    ap = argparse.ArgumentParser(prog="bench_render_pairs")
    ap.add_argument("--pairs", type=int, default=60)
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--samples", type=int, default=2)
    args = ap.parse_args(argv)
    bpy.ops.wm.read_factory_settings(use_empty=True)
    spec = load_spec()
    r = PairRenderer(spec, args.size, args.samples)
    pair_times, image_times, shares, write_times = [], [], [], []
    out = Path(tempfile.mkdtemp(prefix="aurt_bench_"))
    cfg = PairsConfig(count=args.pairs, size=args.size, samples=args.samples)
    r.render(sample_params(spec, 0, 0), 0, 0, False)  # warm-up
    for i in range(args.pairs):
        RENDER_CALL_SECONDS[0] = 0.0
        t = time.perf_counter()
        result = r.render(sample_params(spec, 0, i), 0, i, False)
        pair_times.append(time.perf_counter() - t)
        t = time.perf_counter()
        write_pair(out, cfg, i, result)
        write_times.append(time.perf_counter() - t)
        shares.append(1.0 - RENDER_CALL_SECONDS[0] / pair_times[-1])
        t = time.perf_counter()
        render_array(r.scene)  # baseline: the RGB image alone, same scene and settings
        image_times.append(time.perf_counter() - t)
    shutil.rmtree(out)
    pair, image = statistics.median(pair_times), statistics.median(image_times)
    written = pair + statistics.median(write_times)
    print(f"\n| {args.size} px, {args.samples} samples, {args.pairs} pairs | median s | per s |")
    print("| --- | --- | --- |")
    print(f"| image only (baseline) | {image:.4f} | {1 / image:.1f} |")
    print(f"| full pair (image, mask, landmarks, align) | {pair:.4f} | {1 / pair:.1f} |")
    print(f"| pair written to disk (atomic PNG + NPZ) | {written:.4f} | {1 / written:.1f} |")
    print(f"| ratio pair / image | {pair / image:.2f} | |")
    print(f"| share of pair time outside render calls | {statistics.median(shares):.1%} | |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
