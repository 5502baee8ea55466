"""Tracking speed beside MediaPipe FaceLandmarker on the same video, in the same run: frames per
second end to end (decode included) and CPU seconds per frame (every thread of the process),
as medians over repeated runs after a warm-up.

    python -m ml.bench.tracking tests/media/single_face.mp4 --model au_retarget_addon/models/default

Ours is the add-on's tracker (au_retarget_addon.core.track: MTCNN, alignment, the bundle,
smoothing); MediaPipe's is FaceLandmarker in video mode (its own detector, landmarks with
irises and blendshapes) on each decoded frame. mediapipe is a training extra, never in the
add-on.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

from ml.errors import MLError, exit_on_error


class BenchError(MLError, RuntimeError):
    """A video or model the benchmark cannot read (names it)."""


def _cpu_seconds() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def timed(work: Callable[[], int], repeats: int) -> dict[str, float]:
    """Medians of frames/s and CPU ms per frame over `repeats` runs of `work` (which returns
    the frames it did), after one warm-up run."""
    work()
    fps, cpu = [], []
    for _ in range(repeats):
        c0, t0 = _cpu_seconds(), time.perf_counter()
        n = work()
        wall, used = time.perf_counter() - t0, _cpu_seconds() - c0
        fps.append(n / wall)
        cpu.append(1000 * used / n)
    return {"fps": statistics.median(fps), "cpu_ms": statistics.median(cpu), "frames": n}


def mediapipe_run(video: Path, task: Path) -> Callable[[], int]:
    from au_retarget_addon.core.video import VideoReader
    from ml.eval import mediapipe_yardstick as mpy

    lm = mpy.landmarker(task, video=True)  # loaded once, as our bundle is
    clock = {"ms": 0}  # video mode wants rising timestamps across runs too

    def work() -> int:
        frames = found = 0
        with VideoReader(video) as reader:
            for _, _, rgb in reader.frames():
                clock["ms"] += 33
                found += mpy.read(lm, rgb, clock["ms"]) is not None
                frames += 1
        work.found = found  # type: ignore[attr-defined]
        return frames

    return work


def ours_run(video: Path, model: Path, threads: int) -> Callable[[], int]:
    from au_retarget_addon.core.bundle import ModelBundle
    from au_retarget_addon.core.detect import DEFAULT_MODEL_DIR, FaceDetector
    from au_retarget_addon.core.track import TrackSettings, track_video

    bundle = ModelBundle(model, device="cpu", threads=threads)
    detector = FaceDetector(DEFAULT_MODEL_DIR)

    def work() -> int:
        tracks = track_video(video, bundle, detector, TrackSettings())
        work.found = int(tracks.found.sum())  # type: ignore[attr-defined]
        return len(tracks.frames)

    return work


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m ml.bench.tracking", description=__doc__.split("\n\n")[0]
    )
    ap.add_argument("video", type=Path)
    ap.add_argument("--model", type=Path, default=Path("au_retarget_addon/models/default"))
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=0, help="onnxruntime threads (0: its default)")
    ap.add_argument("--task", type=Path, default=None, help="face_landmarker.task (fetched)")
    args = ap.parse_args(argv)
    if not args.video.is_file():
        raise BenchError(f"video {args.video} does not exist")
    if args.repeats < 1:
        raise BenchError(f"--repeats must be >= 1, got {args.repeats}")
    from ml.eval import mediapipe_yardstick as mpy

    task = args.task or mpy.fetch()
    rows = []
    for name, work in (
        (f"AU Retarget, {args.model.name}", ours_run(args.video, args.model, args.threads)),
        ("MediaPipe FaceLandmarker (video mode)", mediapipe_run(args.video, task)),
    ):
        r = timed(work, args.repeats)
        rows.append((name, r, getattr(work, "found", 0)))
    base = rows[1][1]
    print(f"{args.video.name}: {int(base['frames'])} frames; medians of {args.repeats} runs\n")
    print("| tracker | frames/s | CPU ms per frame | faces found | frames/s vs MediaPipe "
          "| CPU time vs MediaPipe |")  # fmt: skip
    print("| --- | --- | --- | --- | --- | --- |")
    for name, r, found in rows:
        print(f"| {name} | {r['fps']:.1f} | {r['cpu_ms']:.2f} | {found} | "
              f"{r['fps'] / base['fps']:.2f}x | {r['cpu_ms'] / base['cpu_ms']:.2f}x |")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(exit_on_error("python -m ml.bench.tracking", main))
