"""Tracking benchmark: end-to-end frames per second and milliseconds per stage, as medians
over repeated runs, beside a baseline measured in the same run (decoding alone).

    python -m au_retarget_addon.core bench tests/media/single_face.mp4 --model BUNDLE
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path

from .bundle import ModelBundle
from .detect import FaceDetector
from .track import StageClock, TrackSettings, track_video
from .video import VideoReader

STAGES = ("decode", "detect", "align", "infer", "filter")


def decode_only(video: Path) -> tuple[int, float]:
    """Frames and seconds to decode the whole video (the baseline)."""
    t = time.perf_counter()
    with VideoReader(video) as reader:
        n = sum(1 for _ in reader.frames())
    return n, time.perf_counter() - t


def run(
    video: Path,
    bundle: ModelBundle,
    detector: FaceDetector,
    repeats: int = 5,
    crops: str = TrackSettings.crops,
) -> dict[str, float]:
    """Medians over `repeats` runs (after one warm-up): fps, ms per frame per stage, and
    the decode-only baseline; `crops` is TrackSettings.crops."""
    track_video(video, bundle, detector, TrackSettings(crops=crops))  # warm-up: sessions
    fps: list[float] = []
    base_fps: list[float] = []
    stage_ms: dict[str, list[float]] = {s: [] for s in STAGES}
    for _ in range(repeats):
        n, secs = decode_only(video)
        base_fps.append(n / secs)
        clock = StageClock()
        t = time.perf_counter()
        settings = TrackSettings(crops=crops)
        tracks = track_video(video, bundle, detector, settings, clock=clock)
        total = time.perf_counter() - t
        frames = len(tracks.frames)
        fps.append(frames / total)
        for s in STAGES:
            stage_ms[s].append(1000 * clock.seconds.get(s, 0.0) / frames)
    out = {"fps": statistics.median(fps), "decode_only_fps": statistics.median(base_fps)}
    out.update({f"{s}_ms": statistics.median(v) for s, v in stage_ms.items()})
    out["frames"] = float(frames)
    return out


def table(
    result: dict[str, float],
    video: Path,
    bundle: ModelBundle,
    threads: int,
    crops: str = TrackSettings.crops,
) -> str:
    rows = [
        "| measure | median |",
        "| --- | --- |",
        f"| end to end | {result['fps']:.1f} frames/s |",
        f"| baseline: decoding alone | {result['decode_only_fps']:.1f} frames/s |",
        f"| end to end / baseline | {result['fps'] / result['decode_only_fps']:.3f} |",
    ]
    rows += [f"| {s} | {result[f'{s}_ms']:.2f} ms/frame |" for s in STAGES]
    size = bundle.input.size
    mode = crops if bundle.has_landmarks else "detector"  # without landmarks: the detector
    head = (
        f"{video.name}: {int(result['frames'])} frames; model {bundle.path.name} "
        f"({size} px crops from {mode}); {threads or 'default'} threads"
    )
    return head + "\n\n" + "\n".join(rows)
