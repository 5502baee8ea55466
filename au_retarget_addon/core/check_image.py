"""A check image of one tracked video frame: the frame with the detected face box and its
5 points, the aligned crop the regressor reads, and (optionally) a render of the face rig,
side by side under a row of labels.

`read_check_frame` finds the face with the tracking code's own `FaceFollower` and crops it
with `align_face`, so the crop panel holds exactly the pixels tracking feeds the model.
On a single frame the follower runs the full detector, as tracking does on its first frame
and whenever it loses the face. `face_check` composes the panels; `write_check_image`
writes the PNG whole (a temporary file renamed over the target).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from .align import align_face
from .detect import Detection, FaceDetector
from .files import OutputError, atomic_write, check_output
from .track import FaceFollower
from .video import VideoError, open_frames

PANEL_HEIGHT = 256  # target height of the panels in pixels (the crop is scaled by a whole factor)
LABEL_HEIGHT = 24  # the row of labels above the panels
GAP = 8  # pixels between panels
BACKGROUND = (24, 24, 24)
LABEL_RGB = (255, 255, 255)
BOX_RGB = (0, 255, 0)
# eye image-left, eye image-right, nose, mouth corner image-left, mouth corner image-right
POINT_RGB = ((255, 0, 0), (0, 128, 255), (255, 255, 0), (255, 0, 255), (0, 255, 255))


class CheckImageError(RuntimeError):
    """A check image cannot be made (names the video and frame, or the output file)."""


@dataclass(frozen=True, eq=False)  # arrays inside
class CheckFrame:
    """One video frame as tracking reads it: the RGB image, the followed face, its crop."""

    index: int
    time: float  # seconds after the frame `start` that reading began at
    image: np.ndarray = field(repr=False)
    detection: Detection
    crop: np.ndarray = field(repr=False)  # (size, size, 3) uint8: the regressor's input
    matrix: np.ndarray = field(repr=False)  # 2x3: image pixels -> crop pixels


def read_check_frame(
    video: str | Path,
    index: int,
    detector: FaceDetector,
    size: int,
    start: int = 0,
    fps: float | None = None,
    face: int = 0,
) -> CheckFrame:
    """Frame `index` of `video` (a video file or image sequence timed at `fps`), its face
    (the `face`-th largest, as tracking picks it) and the aligned `size` px crop. Frames
    are decoded from `start` on, as tracking from `start` decodes them, so the returned
    time is the one tracking gave the frame, counted from frame `start`."""
    if index < start:
        raise CheckImageError(
            f"video frame {index} is before the first tracked frame {start} of {video}"
        )
    try:
        with open_frames(video, fps) as reader:
            count = reader.info.frame_count
            if index >= count:
                raise CheckImageError(
                    f"frame {index} is beyond the end of {video} ({count} frames, 0-{count - 1})"
                )
            first: float | None = None
            found: tuple[float, np.ndarray] | None = None
            for idx, t, image in reader.frames(start, index + 1):
                first = t if first is None else first
                if idx == index:
                    found = (t - first, image)
    except VideoError as exc:
        raise CheckImageError(str(exc)) from exc
    if found is None:
        raise CheckImageError(
            f"frame {index} of {video} cannot be decoded (the video ends at frame "
            f"{reader.decoded_to - 1})"
        )
    t, image = found
    det, _ = FaceFollower(detector, face)(image)
    if det is None:
        raise CheckImageError(f"no face found in frame {index} of {video}")
    crop, matrix = align_face(image, det.points, size)
    return CheckFrame(index, t, image, det, crop, matrix)


def crop_scale(crop_size: int, height: int = PANEL_HEIGHT) -> int:
    """The whole factor the crop panel enlarges the crop by (its pixels stay exact)."""
    return max(1, round(height / crop_size))


def panel_rects(
    image_shape: tuple[int, ...],
    crop_shape: tuple[int, ...],
    rig_shape: tuple[int, ...] | None,
    height: int = PANEL_HEIGHT,
) -> list[tuple[int, int, int, int]]:
    """Where `face_check` puts each panel: (x, y, width, height) of the frame, the crop
    and, when there is one, the rig render. All panels are as tall as the enlarged crop."""
    h = crop_shape[0] * crop_scale(crop_shape[0], height)
    widths = [max(1, round(image_shape[1] * h / image_shape[0])), h]
    if rig_shape is not None:
        widths.append(max(1, round(rig_shape[1] * h / rig_shape[0])))
    rects, x = [], GAP
    for w in widths:
        rects.append((x, LABEL_HEIGHT, w, h))
        x += w + GAP
    return rects


def _fit(image: np.ndarray, w: int, h: int) -> np.ndarray:
    """`image` resized to w x h: area averaging to shrink, linear to enlarge."""
    if image.shape[:2] == (h, w):
        return image
    shrink = w < image.shape[1]
    return cv2.resize(image, (w, h), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)


def _scaled(p: np.ndarray, s: float) -> np.ndarray:
    """Pixel coordinates (centres at integers) in an image scaled by `s`."""
    return (np.asarray(p, dtype=np.float64) + 0.5) * s - 0.5


def draw_detection(image: np.ndarray, detection: Detection, scale: float = 1.0) -> np.ndarray:
    """A copy of `image` with the face box and the 5 points drawn, coordinates times `scale`."""
    out = np.ascontiguousarray(image.copy())
    x1, y1, x2, y2 = np.round(_scaled(detection.box, scale)).astype(int).tolist()
    cv2.rectangle(out, (x1, y1), (x2, y2), BOX_RGB, 2, cv2.LINE_AA)
    radius = max(2, round(min(x2 - x1, y2 - y1) / 40))
    for (x, y), rgb in zip(
        np.round(_scaled(detection.points, scale)).astype(int), POINT_RGB, strict=True
    ):
        cv2.circle(out, (int(x), int(y)), radius, rgb, -1, cv2.LINE_AA)
    return out


def face_check(
    image_rgb: np.ndarray,
    detection: Detection,
    crop_rgb: np.ndarray,
    rig_rgb: np.ndarray | None,
    labels: Sequence[str],
    height: int = PANEL_HEIGHT,
) -> np.ndarray:
    """The check image (RGB uint8): the frame with the face box and points, the crop
    enlarged by a whole factor (pixel for pixel, nearest neighbour), the rig render if
    given; one label per panel above it."""
    panels = [image_rgb, crop_rgb] + ([] if rig_rgb is None else [rig_rgb])
    if len(labels) != len(panels):
        raise ValueError(f"{len(panels)} panels need {len(panels)} labels, got {len(labels)}")
    for p in panels:
        if p.ndim != 3 or p.shape[2] != 3 or p.dtype != np.uint8:
            raise ValueError(f"panels must be RGB uint8 images (H, W, 3), got {p.shape} {p.dtype}")
    rects = panel_rects(
        image_rgb.shape, crop_rgb.shape, None if rig_rgb is None else rig_rgb.shape, height
    )
    h = rects[0][3]
    width = rects[-1][0] + rects[-1][2] + GAP
    out = np.empty((LABEL_HEIGHT + h + GAP, width, 3), np.uint8)
    out[:] = BACKGROUND
    k = crop_scale(crop_rgb.shape[0], height)
    frame = draw_detection(
        _fit(image_rgb, rects[0][2], h), detection, rects[0][2] / image_rgb.shape[1]
    )
    tiles = [frame, np.repeat(np.repeat(crop_rgb, k, axis=0), k, axis=1)]
    if rig_rgb is not None:
        tiles.append(_fit(rig_rgb, rects[2][2], h))
    for (x, y, w, hh), tile, text in zip(rects, tiles, labels, strict=True):
        out[y : y + hh, x : x + w] = tile
        _label(out, text, x, w)
    return out


def _label(out: np.ndarray, text: str, x: int, width: int) -> None:
    """`text` in the label row above the panel at `x`, shrunk to fit the panel's width."""
    font, scale = cv2.FONT_HERSHEY_SIMPLEX, 0.45
    (tw, _), _ = cv2.getTextSize(text, font, scale, 1)
    scale *= min(1.0, width / max(tw, 1))
    cv2.putText(out, text, (x, LABEL_HEIGHT - 8), font, scale, LABEL_RGB, 1, cv2.LINE_AA)


def write_check_image(path: Path, image_rgb: np.ndarray) -> Path:
    """Write the check image as a PNG (whole or not at all); returns the path."""
    try:
        check_output(path, (".png",))

        def write(tmp: Path) -> None:
            if not cv2.imwrite(str(tmp), cv2.cvtColor(image_rgb, cv2.COLOR_RGB2BGR)):
                raise OutputError(f"{path}: OpenCV could not write the PNG")

        atomic_write(path, write)
    except OSError as exc:
        raise CheckImageError(f"cannot write the check image {path}: {exc}") from exc
    return path
