"""Command line for users without Blender.

python -m au_retarget_addon.core track VIDEO --model BUNDLE --out tracks.csv
python -m au_retarget_addon.core bench VIDEO --model BUNDLE      # speed, per stage
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from tqdm import tqdm

from .bundle import BundleError, ModelBundle
from .detect import DEFAULT_MODEL_DIR, DetectorConfig, DetectorError, FaceDetector
from .smoothing import OneEuroConfig
from .track import TrackingError, TrackSettings, track_video
from .tracks import TracksError, write_csv, write_npz

DEFAULT_DETECTOR = DEFAULT_MODEL_DIR


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m au_retarget_addon.core")
    sub = ap.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("track", help="video -> per-frame parameter table (CSV or NPZ)")
    t.add_argument("video", type=Path)
    t.add_argument("--model", type=Path, required=True, help="model bundle folder")
    t.add_argument("--out", type=Path, required=True, help="tracks.csv or tracks.npz")
    t.add_argument("--detector", type=Path, default=DEFAULT_DETECTOR, help="MTCNN ONNX folder")
    t.add_argument("--start", type=int, default=0)
    t.add_argument("--stop", type=int, default=None)
    t.add_argument("--step", type=int, default=1)
    t.add_argument("--min-cutoff", type=float, default=1.0, help="One Euro: Hz")
    t.add_argument("--beta", type=float, default=0.05, help="One Euro: speed coefficient")
    t.add_argument("--no-smoothing", action="store_true")
    t.add_argument("--missing", choices=("none", "hold", "interpolate"), default="none")
    t.add_argument("--neutral", default=None, help="'auto' or a frame index")
    t.add_argument("--face", type=int, default=0, help="0 = the largest face at the start")
    t.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    t.add_argument("--threads", type=int, default=0)
    b = sub.add_parser("bench", help="frames/s end to end and ms per stage (medians)")
    b.add_argument("video", type=Path)
    b.add_argument("--model", type=Path, required=True, help="model bundle folder")
    b.add_argument("--detector", type=Path, default=DEFAULT_DETECTOR, help="MTCNN ONNX folder")
    b.add_argument("--repeats", type=int, default=5)
    b.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    b.add_argument("--threads", type=int, default=0)
    return ap


def _bench(args: argparse.Namespace) -> int:
    from . import bench

    bundle = ModelBundle(args.model, device=args.device, threads=args.threads)
    detector = FaceDetector(args.detector, DetectorConfig(threads=args.threads))
    result = bench.run(args.video, bundle, detector, args.repeats)
    print(bench.table(result, args.video, bundle, args.threads))
    return 0


def _track(args: argparse.Namespace) -> int:
    if args.out.suffix not in (".csv", ".npz"):
        raise TracksError(f"--out {args.out}: use a .csv or .npz file name")
    bundle = ModelBundle(args.model, device=args.device, threads=args.threads)
    detector = FaceDetector(args.detector, DetectorConfig(threads=args.threads))
    neutral = args.neutral if args.neutral in (None, "auto") else int(args.neutral)
    smoothing = None if args.no_smoothing else OneEuroConfig(args.min_cutoff, args.beta)
    settings = TrackSettings(
        args.start, args.stop, args.step, smoothing, args.missing, neutral, args.face
    )
    bar = tqdm(unit="frame")

    def progress(done: int, total: int) -> bool:
        bar.total = total
        bar.n = done
        bar.refresh()
        return True

    tracks = track_video(args.video, bundle, detector, settings, progress)
    bar.close()
    (write_csv if args.out.suffix == ".csv" else write_npz)(tracks, args.out)
    found = int(tracks.found.sum())
    print(f"wrote {args.out}: {len(tracks.frames)} frames, a face in {found}")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    try:
        return _track(args) if args.cmd == "track" else _bench(args)
    except (BundleError, DetectorError, TrackingError, TracksError) as exc:
        print(f"au_retarget track: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
