"""Command line for users without Blender.

python -m au_retarget_addon.core track VIDEO --model BUNDLE --out tracks.csv
python -m au_retarget_addon.core bench VIDEO --model BUNDLE      # speed, per stage
python -m au_retarget_addon.core livelink tracks.csv --out take.csv  # Live Link Face CSV
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from tqdm import tqdm

from .bundle import BundleError, ModelBundle
from .detect import DEFAULT_MODEL_DIR, DetectorConfig, DetectorError, FaceDetector
from .files import OutputError, check_output
from .livelink import DEFAULT_MAPPING, RATE, LiveLinkError, export_tracks, read_tracks_file
from .mapping import MappingError, load_mapping
from .smoothing import OneEuroConfig
from .track import CROP_MODES, TrackingError, TrackSettings, track_video
from .tracks import Tracks, TracksError, write_csv, write_npz
from .video import VideoError

DEFAULT_DETECTOR = DEFAULT_MODEL_DIR
OUT_SUFFIXES = (".csv", ".npz")
ERRORS = (
    BundleError,
    DetectorError,
    TrackingError,
    TracksError,
    VideoError,
    OutputError,
    LiveLinkError,
    MappingError,
)


def _at_least(lo: float, kind: type = int, strict: bool = False) -> Callable[[str], float]:
    """An argparse type: a number of `kind` >= lo (> lo when strict)."""

    def parse(text: str) -> float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a {kind.__name__}") from None
        if value < lo or (strict and value == lo):
            raise argparse.ArgumentTypeError(f"{text} must be {'>' if strict else '>='} {lo}")
        return value

    parse.__name__ = kind.__name__  # argparse names the type in its messages
    return parse


def _neutral(text: str) -> str | int:
    if text == "auto":
        return text
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: use 'auto' or a frame index") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text}: a frame index is >= 0")
    return value


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m au_retarget_addon.core")
    sub = ap.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("track", help="video -> per-frame parameter table (CSV or NPZ)")
    t.add_argument(
        "video", type=Path,
        help="video file, or image sequence: a folder of frames, frame_%%04d.png, or one frame",
    )  # fmt: skip
    t.add_argument("--model", type=Path, required=True, help="model bundle folder")
    t.add_argument("--out", type=Path, required=True, help="tracks.csv or tracks.npz")
    t.add_argument("--detector", type=Path, default=DEFAULT_DETECTOR, help="MTCNN ONNX folder")
    t.add_argument("--start", type=_at_least(0), default=0, help="first frame")
    t.add_argument("--stop", type=_at_least(1), default=None, help="frame to stop before")
    t.add_argument("--step", type=_at_least(1), default=1, help="track every N-th frame")
    t.add_argument(
        "--min-cutoff", type=_at_least(0, float, strict=True), default=1.0, help="One Euro: Hz"
    )
    t.add_argument(
        "--beta", type=_at_least(0, float), default=0.05, help="One Euro: speed coefficient"
    )
    t.add_argument("--no-smoothing", action="store_true")
    t.add_argument("--missing", choices=("none", "hold", "interpolate"), default="none")
    t.add_argument("--neutral", type=_neutral, default=None, help="'auto' or a frame index")
    t.add_argument("--face", type=_at_least(0), default=0, help="0 = the largest face at the start")
    t.add_argument(
        "--no-quality-gate", action="store_true",
        help="key every detected face, also those too small, rolled or upside down",
    )  # fmt: skip
    t.add_argument(
        "--fps", type=_at_least(0, float, strict=True), default=None,
        help="an image sequence's frame rate (default 30); a video keeps its own",
    )  # fmt: skip
    t.add_argument(
        "--crops", choices=CROP_MODES, default=TrackSettings.crops,
        help="landmarks: each crop from the previous frame's landmarks, MTCNN only to start "
        "and when the face is lost; detector: MTCNN on every frame, batched inference",
    )  # fmt: skip
    t.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    t.add_argument("--threads", type=_at_least(0), default=0)
    b = sub.add_parser("bench", help="frames/s end to end and ms per stage (medians)")
    b.add_argument("video", type=Path)
    b.add_argument("--model", type=Path, required=True, help="model bundle folder")
    b.add_argument("--detector", type=Path, default=DEFAULT_DETECTOR, help="MTCNN ONNX folder")
    b.add_argument("--repeats", type=_at_least(1), default=5)
    b.add_argument("--crops", choices=CROP_MODES, default=TrackSettings.crops)
    b.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    b.add_argument("--threads", type=_at_least(0), default=0)
    ll = sub.add_parser(
        "livelink", help="tracks (CSV or NPZ) -> Live Link Face CSV: 52 ARKit blendshapes, angles"
    )
    ll.add_argument("tracks", type=Path, help="tracks.csv or tracks.npz written by track")
    ll.add_argument("--out", type=Path, required=True, help="take.csv")
    ll.add_argument(
        "--mapping", type=Path, default=DEFAULT_MAPPING, help="mapping to the ARKit blendshapes"
    )
    ll.add_argument("--rate", type=_at_least(1), default=RATE, help="timecode frames per second")
    return ap


def _bench(args: argparse.Namespace) -> int:
    from . import bench

    bundle = ModelBundle(args.model, device=args.device, threads=args.threads)
    detector = FaceDetector(args.detector, DetectorConfig(threads=args.threads, device=args.device))
    result = bench.run(args.video, bundle, detector, args.repeats, args.crops)
    print(bench.table(result, args.video, bundle, args.threads, args.crops))
    return 0


def _livelink(args: argparse.Namespace) -> int:
    check_output(args.out, (".csv",))
    tracks = read_tracks_file(args.tracks)
    take = export_tracks(tracks, args.out, load_mapping(args.mapping), int(args.rate))
    print(f"wrote {args.out}: {len(take.times)} frames with a face (of {len(tracks.frames)})")
    return 0


def _write(tracks: Tracks, out: Path) -> Path:
    """Write the tracks to `out`; when that fails after all (the disk filled, the folder
    went away), write them to the temporary folder instead and say where."""
    write = write_csv if out.suffix.lower() == ".csv" else write_npz
    try:
        write(tracks, out)
        return out
    except OSError as exc:
        try:
            keep = Path(tempfile.mkdtemp(prefix="au_retarget_")) / f"tracks{out.suffix.lower()}"
            write(tracks, keep)
        except OSError as again:
            raise OutputError(
                f"--out {out} could not be written ({exc.strerror or exc}), nor a copy in "
                f"the temporary folder ({again.strerror or again})"
            ) from exc
        raise OutputError(
            f"--out {out} could not be written ({exc.strerror or exc}); "
            f"the tracks are kept in {keep}"
        ) from exc


def _track(args: argparse.Namespace) -> int:
    check_output(args.out, OUT_SUFFIXES)
    smoothing = None if args.no_smoothing else OneEuroConfig(args.min_cutoff, args.beta)
    settings = TrackSettings(
        args.start, args.stop, args.step, smoothing, args.missing, args.neutral, args.face
    )
    settings.sequence_fps = args.fps
    settings.crops = args.crops
    if args.no_quality_gate:
        settings.quality = type(settings.quality)(enabled=False)
    settings.check()
    bundle = ModelBundle(args.model, device=args.device, threads=args.threads)
    detector = FaceDetector(args.detector, DetectorConfig(threads=args.threads, device=args.device))
    bar: tqdm | None = None  # made at the first frame: an early error prints no bar

    def progress(done: int, total: int) -> bool:
        nonlocal bar
        if bar is None:
            bar = tqdm(unit="frame", total=total)
        bar.total = total
        bar.n = done
        bar.refresh()
        return True

    try:
        tracks = track_video(args.video, bundle, detector, settings, progress)
    finally:
        if bar is not None:
            bar.close()
    for note in tracks.report.notes:
        print(f"au_retarget track: warning: {note}", file=sys.stderr)
    out = _write(tracks, args.out)
    print(f"wrote {out}: {len(tracks.frames)} frames; {tracks.report.summary()}")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    prog = f"au_retarget {args.cmd}"
    try:
        return {"track": _track, "bench": _bench, "livelink": _livelink}[args.cmd](args)
    except ERRORS as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{prog}: interrupted; nothing was written", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
