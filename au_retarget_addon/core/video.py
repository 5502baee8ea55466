"""Video and image-sequence input through OpenCV, streamed frame by frame (memory stays
flat).

`VideoReader` checks a video file and reads its metadata; `VideoReader.frames` yields
(frame index, time in seconds, RGB image) for a frame range and step, with the
container's rotation applied (phone videos are often stored sideways). A frame's time is
its timestamp in the container, so variable-frame-rate video (phones, screen captures)
keeps its timing; where a container gives none, index / frame rate.

`ImageSequenceReader` reads numbered images the same way: a folder of frames, a printf
pattern (`shots/frame_%04d.png`) or one numbered image of a sequence (`frame_0001.png`
stands for all `frame_NNNN.png` beside it). Images carry no frame rate: the caller gives
one (the add-on uses the scene's), else 30 fps. `open_frames` picks the reader for a path.
"""

from __future__ import annotations

import logging
import re
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


IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".exr", ".webp")
_PRINTF = re.compile(r"%(0?)(\d*)d")
_TRAILING_NUMBER = re.compile(r"^(.*?)(\d+)$")


def _number_key(path: Path) -> tuple[str, int, str]:
    """Sort key: a name's trailing number as a number (frame_2 before frame_10)."""
    m = _TRAILING_NUMBER.match(path.stem)
    return (m.group(1), int(m.group(2)), path.name) if m else (path.stem, -1, path.name)


def sequence_files(path: str | Path) -> list[Path] | None:
    """The frames of an image sequence in order, or None when `path` names no sequence (a
    video file). A VideoError when it names a sequence that has no frames."""
    path = Path(path)
    if path.is_dir():
        files = [f for f in path.iterdir() if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES]
        if not files:
            raise VideoError(
                f"{path} is a folder that holds no images ({', '.join(IMAGE_SUFFIXES)}): "
                "choose a video file or a folder of frames"
            )
        return sorted(files, key=_number_key)
    if printf := _PRINTF.search(path.name):
        head, tail = path.name[: printf.start()], path.name[printf.end() :]
        pattern = re.compile(re.escape(head) + r"(\d+)" + re.escape(tail) + "$")
        folder = path.parent
        if not folder.is_dir():
            raise VideoError(f"image sequence {path}: folder {folder} does not exist")
        hits = [(int(m.group(1)), f) for f in folder.iterdir() if (m := pattern.match(f.name))]
        if not hits:
            raise VideoError(f"image sequence {path} matches no file in {folder}")
        return [f for _, f in sorted(hits)]
    if path.suffix.lower() in IMAGE_SUFFIXES:
        if not path.is_file():
            raise VideoError(f"image {path} does not exist")
        m = _TRAILING_NUMBER.match(path.stem)
        if m is None:
            return [path]
        prefix, suffix = m.group(1), path.suffix
        pattern = re.compile(re.escape(prefix) + r"(\d+)" + re.escape(suffix) + "$")
        hits = [(int(n.group(1)), f) for f in path.parent.iterdir() if (n := pattern.match(f.name))]
        return [f for _, f in sorted(hits)]
    return None


class ImageSequenceReader:
    """Streams RGB frames of an image sequence, like `VideoReader`; frame k is at k / fps."""

    def __init__(self, path: str | Path, files: list[Path], fps: float | None = None) -> None:
        self.path = Path(path)
        self.files = files
        first = self._read(0)
        h, w = first.shape[:2]
        if fps is not None and not fps > 0:
            raise VideoError(f"image sequence {self.path}: frame rate must be > 0, got {fps}")
        self.info = VideoInfo(self.path, float(fps or 30.0), len(files), w, h, 0)
        self.decoded_to = 0
        self.untimed = 0  # images carry no timestamps; their times come from the rate

    def __enter__(self) -> ImageSequenceReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        pass

    def _read(self, index: int) -> np.ndarray:
        file = self.files[index]
        bgr = cv2.imread(str(file), cv2.IMREAD_COLOR)
        if bgr is None:
            raise VideoError(
                f"image sequence {self.path}: frame {index} ({file.name}) cannot be read"
            )
        return bgr

    def frames(
        self, start: int = 0, stop: int | None = None, step: int = 1
    ) -> Iterator[tuple[int, float, np.ndarray]]:
        """(index, seconds, RGB uint8 image) for frames start, start+step, ... < stop."""
        if start < 0 or step < 1 or (stop is not None and stop <= start):
            raise VideoError(f"{self.path}: bad frame range start={start} stop={stop} step={step}")
        end = len(self.files) if stop is None else min(stop, len(self.files))
        if start >= end:
            raise VideoError(f"{self.path}: no frame from frame {start} on")
        for index in range(start, end, step):
            bgr = self._read(index)
            self.decoded_to = index + 1
            yield index, index / self.info.fps, cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        self.decoded_to = end


def take_name(path: str | Path) -> str:
    """A short name for what `path` holds: a video's file stem, an image sequence's folder."""
    path = Path(path)
    if path.is_dir():
        return path.name
    if _PRINTF.search(path.name) or path.suffix.lower() in IMAGE_SUFFIXES:
        return path.parent.name or path.stem
    return path.stem


def open_frames(path: str | Path, fps: float | None = None) -> VideoReader | ImageSequenceReader:
    """The reader for a video file or an image sequence; `fps` times an image sequence
    (videos carry their own)."""
    files = sequence_files(path)
    if files is None:
        return VideoReader(path)
    return ImageSequenceReader(path, files, fps)
