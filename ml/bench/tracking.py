"""Tracking speed beside MediaPipe FaceLandmarker on the same video, in the same run: frames per
second end to end (decode included) and CPU seconds per frame (every thread of the process),
as medians over repeated runs after a warm-up.

    python -m ml.bench.tracking tests/media/single_face.mp4 --model au_retarget_addon/models/default

Ours is the add-on's tracker (au_retarget_addon.core.track: alignment, the bundle,
smoothing) in both crop modes, "landmarks" (each crop from the previous frame's landmarks,
MTCNN only to start and when the face is lost) and "detector" (MTCNN on every frame);
MediaPipe's is FaceLandmarker in video mode (its own detector, landmarks with irises and
blendshapes) on each decoded frame. The trackers run interleaved, one run of each per
repeat, so load from other work on the cores falls on all of them alike. Also printed: how
often MTCNN ran, how far the two modes' outputs differ on the same frames (mean absolute
difference, unsmoothed), and the bundle's time per crop at batch 1 and batch 8 (landmark
mode infers one frame at a time). mediapipe is a training extra, never in the add-on.
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


def timed(works: list[Callable[[], int]], repeats: int) -> list[dict[str, float]]:
    """Medians of frames/s and CPU ms per frame of each of `works` (each returns the frames
    it did) over `repeats` rounds, one run of each per round, after one warm-up run each."""
    for work in works:
        work()
    fps: list[list[float]] = [[] for _ in works]
    cpu: list[list[float]] = [[] for _ in works]
    frames = [0] * len(works)
    for _ in range(repeats):
        for i, work in enumerate(works):
            c0, t0 = _cpu_seconds(), time.perf_counter()
            n = frames[i] = work()
            wall, used = time.perf_counter() - t0, _cpu_seconds() - c0
            fps[i].append(n / wall)
            cpu[i].append(1000 * used / n)
    return [
        {"fps": statistics.median(f), "cpu_ms": statistics.median(c), "frames": n}
        for f, c, n in zip(fps, cpu, frames, strict=True)
    ]


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


def ours_run(video: Path, model: Path, threads: int, crops: str) -> Callable[[], int]:
    from au_retarget_addon.core.bundle import ModelBundle
    from au_retarget_addon.core.detect import DEFAULT_MODEL_DIR, FaceDetector
    from au_retarget_addon.core.track import TrackSettings, track_video

    bundle = ModelBundle(model, device="cpu", threads=threads)
    detector = FaceDetector(DEFAULT_MODEL_DIR)

    def work() -> int:
        tracks = track_video(video, bundle, detector, TrackSettings(crops=crops))
        work.found = int(tracks.found.sum())  # type: ignore[attr-defined]
        work.detector_frames = tracks.report.detector_frames  # type: ignore[attr-defined]
        return len(tracks.frames)

    return work


def mode_difference(video: Path, model: Path, threads: int) -> dict[str, float]:
    """Mean absolute difference between the crop modes' unsmoothed values on the frames
    where both found the face: AUs (mean over AUs), head yaw, pitch, roll (degrees); also
    the frames each mode found a face in, and those MTCNN ran on in landmark mode."""
    import numpy as np

    from au_retarget_addon.core.bundle import ModelBundle
    from au_retarget_addon.core.detect import DEFAULT_MODEL_DIR, FaceDetector
    from au_retarget_addon.core.track import TrackSettings, track_video

    bundle = ModelBundle(model, device="cpu", threads=threads)
    detector = FaceDetector(DEFAULT_MODEL_DIR)
    a, b = (
        track_video(video, bundle, detector, TrackSettings(crops=c, smoothing=None))
        for c in ("detector", "landmarks")
    )
    both = a.found & b.found
    au = [i for i, n in enumerate(a.names) if n.startswith("AU")]
    out = {
        "found_detector": float(a.found.sum()),
        "found_landmarks": float(b.found.sum()),
        "mtcnn_landmarks": float(b.report.detector_frames),
        "frames": float(both.sum()),
        "au": float(np.abs(a.values[both][:, au] - b.values[both][:, au]).mean()),
    }
    for name in ("head_yaw", "head_pitch", "head_roll"):
        j = a.names.index(name)
        out[name] = float(np.abs(a.values[both, j] - b.values[both, j]).mean())
    return out


def per_crop_ms(model: Path, threads: int, batches: tuple[int, ...] = (1, 8), crops: int = 64,
                repeats: int = 5) -> dict[int, tuple[float, float]]:  # fmt: skip
    """Median wall and CPU ms per crop of the bundle's graph alone at each batch size
    (random crops; the sizes alternate within each repeat)."""
    import numpy as np

    from au_retarget_addon.core.bundle import ModelBundle

    bundle = ModelBundle(model, device="cpu", threads=threads)
    size = bundle.input.size
    x = np.random.default_rng(0).integers(0, 255, (crops, size, size, 3), dtype=np.uint8)
    rolls = np.zeros(crops)
    wall: dict[int, list[float]] = {b: [] for b in batches}
    cpu: dict[int, list[float]] = {b: [] for b in batches}
    for b in batches:
        bundle.read(x[:b], b, crop_rolls=rolls[:b])  # warm-up
    for _ in range(repeats):
        for b in batches:
            c0, t0 = _cpu_seconds(), time.perf_counter()
            bundle.read(x, b, crop_rolls=rolls)
            wall[b].append(1000 * (time.perf_counter() - t0) / crops)
            cpu[b].append(1000 * (_cpu_seconds() - c0) / crops)
    return {b: (statistics.median(wall[b]), statistics.median(cpu[b])) for b in batches}


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
    names = [f"AU Retarget, {args.model.name}, crops from landmarks",
             f"AU Retarget, {args.model.name}, MTCNN every frame",
             "MediaPipe FaceLandmarker (video mode)"]  # fmt: skip
    works = [
        ours_run(args.video, args.model, args.threads, "landmarks"),
        ours_run(args.video, args.model, args.threads, "detector"),
        mediapipe_run(args.video, task),
    ]
    rows = [
        (name, r, getattr(w, "found", 0), getattr(w, "detector_frames", None))
        for name, r, w in zip(names, timed(works, args.repeats), works, strict=True)
    ]
    base = rows[-1][1]
    print(f"{args.video.name}: {int(base['frames'])} frames; medians of {args.repeats} runs, "
          "the trackers interleaved\n")  # fmt: skip
    print("| tracker | frames/s | CPU ms per frame | faces found | MTCNN ran on | "
          "frames/s vs MediaPipe | CPU time vs MediaPipe |")  # fmt: skip
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for name, r, found, det in rows:
        ran = "" if det is None else f"{det} frames"
        print(f"| {name} | {r['fps']:.1f} | {r['cpu_ms']:.2f} | {found} | {ran} | "
              f"{r['fps'] / base['fps']:.2f}x | {r['cpu_ms'] / base['cpu_ms']:.2f}x |")  # fmt: skip
    d = mode_difference(args.video, args.model, args.threads)
    print(f"\nlandmarks vs detector crops, unsmoothed, {int(d['frames'])} frames: "
          f"mean |difference| AU {d['au']:.4f}, head yaw {d['head_yaw']:.2f}, "
          f"pitch {d['head_pitch']:.2f}, roll {d['head_roll']:.2f} degrees")  # fmt: skip
    ms = per_crop_ms(args.model, args.threads)
    print("bundle alone, per crop: " + "; ".join(
        f"batch {b} {w:.2f} ms ({c:.2f} CPU ms)" for b, (w, c) in ms.items())
        + f"; batch 1 / batch 8: {ms[1][0] / ms[8][0]:.2f}x wall, "
        f"{ms[1][1] / ms[8][1]:.2f}x CPU")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(exit_on_error("python -m ml.bench.tracking", main))
