"""The quality gate: detections the regressor cannot read are marked as frames without a
face (they then follow the missing-frame policy) and counted by reason.

A face is refused when
- its eyes are fewer than `min_eye_distance` pixels apart (the crop would be an
  upscaled blur: a 15 x 21 px face has them 9 px apart; the detections of the
  real-face set, measured 2026-12-04, are 15 to 115 px apart);
- the detector is less sure than `min_score` (every detection in the real-face set
  scored above 0.9, 99.7% of them above 0.95);
- the alignment rolls it further than the rig's head roll can follow, plus `roll_margin`
  degrees (a sideways video without a rotation tag);
- it is upside down or sideways: the detector, run on the frame turned by 90, 180 or
  270 degrees, finds the same face with a probability higher by `flip_margin` in
  logits. Upright faces of the real-face set scored 3.5 to 16.7 logits higher upright
  than upside down, so the margin leaves room both ways. This check runs when a face is
  first found (a track starts); the track keeps its verdict;
- the model's own feature extractor does not read a face in the aligned crop: its
  face-presence probability is below `min_presence` (bundles on the landmark network
  only; checked after inference). MediaPipe's FaceLandmarker drops faces below the same
  0.5. Measured 2026-12-06 on the real-face set's held-out people: 75% of one track
  (a face turned to profile) falls below it, and there head yaw read at r -0.16 against
  MediaPipe's, 0.98 on the track's other frames; of the set's other four tracks, 0 to 4%
  (48 frames sampled from each).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from .detect import Detection, FaceDetector

REASONS = {
    "small": "face too small",
    "score": "detector unsure",
    "roll": "rolled beyond the rig",
    "upside_down": "upside down",
    "sideways": "turned sideways (a video whose rotation tag is lost?)",
    "presence": "not read as a face by the model (turned to profile, covered?)",
}


@dataclass(frozen=True)
class QualityConfig:
    min_eye_distance: float = 12.0  # pixels in the video frame
    min_score: float = 0.9
    roll_margin: float = 15.0  # degrees beyond the rig's head-roll range
    flip_margin: float = 1.0  # logits (turned())
    min_presence: float = 0.5  # the model's face-presence probability, where it has one
    enabled: bool = True


def _logit(p: float) -> float:
    p = min(max(p, 1e-9), 1 - 1e-9)
    return math.log(p / (1 - p))


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = w * h
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / max(union, 1e-9)


_TURNS = {
    90: cv2.ROTATE_90_CLOCKWISE,
    180: cv2.ROTATE_180,
    270: cv2.ROTATE_90_COUNTERCLOCKWISE,
}


def _turned_box(box: np.ndarray, w: int, h: int, degrees: int) -> np.ndarray:
    """A box of a w x h frame in that frame turned clockwise by `degrees`."""
    x1, y1, x2, y2 = box
    if degrees == 90:
        return np.array([h - y2, x1, h - y1, x2])
    if degrees == 180:
        return np.array([w - x2, h - y2, w - x1, h - y1])
    return np.array([y1, w - x2, y2, w - x1])


def turned(image: np.ndarray, det: Detection, detector: FaceDetector, margin: float) -> int:
    """0 when the face of `det` reads best as it is; else the clockwise turn (90, 180,
    270) of the frame under which the detector finds it more surely (module docstring)."""
    h, w = image.shape[:2]
    best, best_logit = 0, _logit(det.score) + margin
    for degrees, code in _TURNS.items():
        box = _turned_box(det.box, w, h, degrees)
        same = [d for d in detector.detect(cv2.rotate(image, code)) if _iou(d.box, box) > 0.3]
        if same and max(_logit(d.score) for d in same) > best_logit:
            best, best_logit = degrees, max(_logit(d.score) for d in same)
    return best


class QualityGate:
    """`check(image, det, crop_roll, new_track)` -> None, or the REASONS key refusing it."""

    def __init__(
        self, detector: FaceDetector, roll_range: tuple[float, float], cfg: QualityConfig
    ) -> None:
        self.detector, self.cfg = detector, cfg
        self.roll_limit = max(abs(roll_range[0]), abs(roll_range[1])) + cfg.roll_margin
        self.track_turn = 0  # the current track's verdict: turned() when it started

    def check(
        self, image: np.ndarray, det: Detection, crop_roll: float, new_track: bool
    ) -> str | None:
        c = self.cfg
        if not c.enabled:
            return None
        if new_track:
            self.track_turn = turned(image, det, self.detector, c.flip_margin)
        return self._check(det.points, det.score, crop_roll)

    def check_points(self, points: np.ndarray, crop_roll: float) -> str | None:
        """`check` for a crop aligned by points of the landmark network rather than a
        detection: the track's turn verdict, eye distance and roll (no detector score)."""
        return self._check(points, None, crop_roll) if self.cfg.enabled else None

    def _check(self, points: np.ndarray, score: float | None, crop_roll: float) -> str | None:
        c = self.cfg
        if self.track_turn:
            return "upside_down" if self.track_turn == 180 else "sideways"
        if float(np.linalg.norm(points[0] - points[1])) < c.min_eye_distance:
            return "small"
        if score is not None and score < c.min_score:
            return "score"
        if abs(crop_roll) > self.roll_limit:
            return "roll"
        return None

    def check_presence(self, presence: float) -> str | None:
        """After inference: None, or "presence" when the model's own network does not read
        a face in the crop."""
        if self.cfg.enabled and presence < self.cfg.min_presence:
            return "presence"
        return None
