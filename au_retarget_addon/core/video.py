"""Video input through OpenCV, streamed frame by frame (memory stays flat).

`VideoReader` checks the file and reads its metadata; `VideoReader.frames` yields
(frame index, time in seconds, RGB image) for a frame range and step, with the
container's rotation applied (phone videos are often stored sideways). A frame's time is
its timestamp in the container, so variable-frame-rate video (phones, screen captures)
keeps its timing; where a container gives none, index / frame rate.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

log = logging.getLogger(__name__)


class VideoError(RuntimeError):
    """A video cannot be used; the message names the file (and frame)."""


@dataclass(frozen=True)
class VideoInfo:
    path: Path
    fps: float
    frame_count: int  # as reported by the container; may be approximate
    width: int  # after rotation
    height: int
    rotation: int  # degrees clockwise applied to decoded frames: 0, 90, 180, 270


_ROTATE = {90: cv2.ROTATE_90_CLOCKWISE, 180: cv2.ROTATE_180, 270: cv2.ROTATE_90_COUNTERCLOCKWISE}


def _rotation(cap: cv2.VideoCapture) -> int:
    """Rotation still to apply: OpenCV rotates itself when CAP_PROP_ORIENTATION_AUTO is on."""
    meta = int(cap.get(cv2.CAP_PROP_ORIENTATION_META) or 0) % 360
    auto = bool(cap.get(cv2.CAP_PROP_ORIENTATION_AUTO))
    return 0 if auto else meta


class VideoReader:
    """Streams RGB frames of one video; use as a context manager."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if self.path.is_dir():
            raise VideoError(f"video {self.path} is a folder, not a video file")
        if not self.path.is_file():
            raise VideoError(f"video {self.path} does not exist")
        self.cap = cv2.VideoCapture(str(self.path))
        if not self.cap.isOpened():
            raise VideoError(f"video {self.path} cannot be opened (unknown format or codec)")
        rot = _rotation(self.cap)
        w = int(self.cap.get(cv2.CAP_PROP_FRAME_WIDTH))
        h = int(self.cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
        if rot in (90, 270):
            w, h = h, w
        fps = float(self.cap.get(cv2.CAP_PROP_FPS) or 0.0)
        count = int(self.cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        if count <= 0 or w <= 0 or h <= 0:
            self.close()
            raise VideoError(f"video {self.path} has no frames")
        if fps <= 0:
            log.warning("%s reports no frame rate; assuming 30 fps", self.path)
            fps = 30.0
        self.info = VideoInfo(self.path, fps, count, w, h, rot)
        self.decoded_to = 0  # one past the last frame index read so far
        self.untimed = 0  # frames whose container timestamp was missing or out of order

    def __enter__(self) -> VideoReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.cap.release()

    def frames(
        self, start: int = 0, stop: int | None = None, step: int = 1
    ) -> Iterator[tuple[int, float, np.ndarray]]:
        """(index, seconds, RGB uint8 image) for frames start, start+step, ... < stop."""
        if start < 0 or step < 1 or (stop is not None and stop <= start):
            raise VideoError(f"{self.path}: bad frame range start={start} stop={stop} step={step}")
        if start > 0 and not self.cap.set(cv2.CAP_PROP_POS_FRAMES, start):
            raise VideoError(f"{self.path}: cannot seek to frame {start}")
        index = start
        last = -np.inf
        while stop is None or index < stop:
            ok, bgr = self.cap.read()
            if not ok:
                break
            t = self.cap.get(cv2.CAP_PROP_POS_MSEC) / 1000.0
            if not (np.isfinite(t) and t > last):
                self.untimed += 1
                t = max(index / self.info.fps, last + 1e-6)
            last = t
            if (index - start) % step == 0:
                if self.info.rotation:
                    bgr = cv2.rotate(bgr, _ROTATE[self.info.rotation])
                yield index, t, cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
            index += 1
            self.decoded_to = index
        if index == start:
            raise VideoError(f"{self.path}: no frame could be decoded from frame {start} on")
