"""Videos for the bad-input tests, written by the tests themselves from the sample video
(nothing of them is committed): turned, shrunk, black, cut short, variable frame rate."""

from __future__ import annotations

from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np

from tests.conftest import MEDIA

SAMPLE = MEDIA / "single_face.mp4"  # 640 x 360, 30 fps, 72 frames, one face


def sample_frames(n: int | None = None) -> list[np.ndarray]:
    """The sample video's BGR frames (the first n)."""
    cap = cv2.VideoCapture(str(SAMPLE))
    frames = []
    while n is None or len(frames) < n:
        ok, bgr = cap.read()
        if not ok:
            break
        frames.append(bgr)
    cap.release()
    return frames


def write_video(path: Path, frames: list[np.ndarray], fps: float = 30.0) -> Path:
    """BGR frames -> an MJPG AVI (or mp4v MP4, by the suffix) through OpenCV."""
    h, w = frames[0].shape[:2]
    fourcc = cv2.VideoWriter_fourcc(*("MJPG" if path.suffix == ".avi" else "mp4v"))
    out = cv2.VideoWriter(str(path), fourcc, fps, (w, h))
    for f in frames:
        out.write(f)
    out.release()
    return path


def transformed(path: Path, change: Callable[[np.ndarray], np.ndarray], n: int = 12) -> Path:
    return write_video(path, [change(f) for f in sample_frames(n)])


def upside_down(path: Path, n: int = 12) -> Path:
    return transformed(path, lambda f: cv2.rotate(f, cv2.ROTATE_180), n)


def sideways(path: Path, n: int = 12) -> Path:
    """Turned 90 degrees with no rotation tag (a phone video with its tag lost)."""
    return transformed(path, lambda f: cv2.rotate(f, cv2.ROTATE_90_CLOCKWISE), n)


def tiny_face(path: Path, n: int = 12) -> Path:
    """The face shrunk to about 18 x 25 px on a black frame of the same size."""

    def shrink(f: np.ndarray) -> np.ndarray:
        small = cv2.resize(f, None, fx=0.12, fy=0.12, interpolation=cv2.INTER_AREA)
        canvas = np.zeros_like(f)
        canvas[100 : 100 + small.shape[0], 100 : 100 + small.shape[1]] = small
        return canvas

    return transformed(path, shrink, n)


def black(path: Path, n: int = 12) -> Path:
    return write_video(path, [np.zeros((360, 640, 3), np.uint8)] * n)


def cut_short(path: Path, keep: float = 0.5) -> Path:
    """An AVI whose last part is missing (a partial download): its header still
    announces every frame."""
    whole = write_video(path.with_name(path.stem + "_whole.avi"), sample_frames(24))
    data = whole.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
    return path


def variable_rate(path: Path, gaps_ms: list[int]) -> tuple[Path, list[float]]:
    """An MP4 (PyAV, H.264 or MPEG-4) of the sample's frames whose frame times follow
    `gaps_ms`; returns the path and each frame's time in seconds."""
    import av

    frames = sample_frames(len(gaps_ms) + 1)
    times = [0.0]
    for g in gaps_ms:
        times.append(times[-1] + g / 1000)
    with av.open(str(path), "w") as c:
        codec = "libx264" if "libx264" in av.codecs_available else "mpeg4"
        s = c.add_stream(codec, rate=30)
        s.width, s.height, s.pix_fmt = 640, 360, "yuv420p"
        s.time_base = s.codec_context.time_base = Fraction(1, 1000)
        for f, t in zip(frames, times, strict=True):
            vf = av.VideoFrame.from_ndarray(cv2.cvtColor(f, cv2.COLOR_BGR2RGB), format="rgb24")
            vf.pts, vf.time_base = round(t * 1000), Fraction(1, 1000)
            for p in s.encode(vf):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    return path, times
