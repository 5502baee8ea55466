"""The 5 alignment points (align.py's convention) from the landmark network's 478 points.

The tracker steers the next frame's crop with them, so they must land where MTCNN's ONet
puts its points: the regressor was trained on crops aligned to that convention (renders are
aligned by the rig's own 5 points, chosen to match the detector). Each point is one landmark
or the mean of a few, plus a constant offset in the face's own frame: x along the eye line
(image-left eye to image-right eye), y across it (down the face), both in units of the
inter-ocular distance of the derived eyes, so the correction holds at any scale and roll.

Measured 2026-12-06 (`python -m ml.bench.landmark_points VIDEOS --fit`): ONet's points
against the landmarks of the default bundle, both in the 256 px crop aligned by ONet's
points, on 485 frames with one confident face (presence and ONet score at least 0.9): all
72 of tests/media/single_face.mp4 and about 80 evenly spaced frames of each clip of the
real-face set (cap12_edit, cap13_edit2, franck, multispeaker, talking_short). For each part
the best of a few anatomical candidates (that command's CANDIDATES) once the offsets are
taken out: the eyes' contour means beat the iris centres (2.24 and 1.96 px), landmark 19
beat the nose tip 1 (2.38 px), 61 and 291 the inner mouth corners. Mean distance from ONet's
points with the offsets: MEAN_RESIDUAL_PX (1.2 to 2.5 px per point on the real clips but
multispeaker, whose small faces give 4 to 9 px; the eyes are 58 px apart in the crop);
without them RAW_RESIDUAL_PX. tests/test_landmark_points.py re-measures on the sample video.
"""

from __future__ import annotations

import numpy as np

from .align import transform_points

N_LANDMARKS = 478
# Landmark indices averaged for each point, in align.py's order: eye image-left, eye
# image-right, nose tip, mouth corner image-left, mouth corner image-right (MediaPipe's mesh:
# the 16 points around each eye, 19 just below the nose tip, 61 and 291 the mouth corners).
EYE_IMAGE_LEFT = (33, 7, 163, 144, 145, 153, 154, 155, 133, 173, 157, 158, 159, 160, 161, 246)
EYE_IMAGE_RIGHT = (362, 382, 381, 380, 374, 373, 390, 249, 263, 466, 388, 387, 386, 385, 384, 398)
POINT_LANDMARKS: tuple[tuple[int, ...], ...] = (
    EYE_IMAGE_LEFT,
    EYE_IMAGE_RIGHT,
    (19,),
    (61,),
    (291,),
)
# (x along the eye line, y down the face) per point, in inter-ocular distances.
POINT_OFFSETS = np.array(
    [[-0.0001, -0.0104], [0.0337, -0.0137], [0.0218, -0.1236], [0.008, 0.0405], [0.0451, 0.0325]]
)
MEAN_RESIDUAL_PX = (1.93, 1.84, 2.24, 3.62, 2.94)  # 256 px crop; the points in align.py's order
RAW_RESIDUAL_PX = (2.09, 2.47, 7.55, 3.65, 3.62)


class LandmarkPointsError(ValueError):
    """Landmarks that cannot give 5 alignment points (wrong shape, non-finite, degenerate)."""


def raw_points(landmarks: np.ndarray, picks: tuple[tuple[int, ...], ...] = POINT_LANDMARKS):
    """(5, 2): the mean (x, y) of each point's landmarks, uncorrected."""
    lm = np.asarray(landmarks, dtype=np.float64)
    return np.stack([lm[list(p), :2].mean(0) for p in picks])


def face_axes(points5: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """Unit vectors along the eye line and across it (down the face in an upright image),
    and the inter-ocular distance, of 5 points in align.py's order."""
    eye = points5[1] - points5[0]
    iod = float(np.hypot(eye[0], eye[1]))
    u = eye / max(iod, 1e-12)
    return u, np.array([-u[1], u[0]]), iod


def crop_points(landmarks: np.ndarray) -> np.ndarray:
    """(5, 2) alignment points in the landmarks' own pixels (the crop's), with the offsets."""
    lm = np.asarray(landmarks, dtype=np.float64)
    if lm.ndim != 2 or lm.shape[0] != N_LANDMARKS or lm.shape[1] < 2:
        raise LandmarkPointsError(f"need ({N_LANDMARKS}, 2 or 3) landmarks, got {lm.shape}")
    raw = raw_points(lm)
    if not np.isfinite(raw).all():
        raise LandmarkPointsError("the landmarks are not finite")
    u, v, iod = face_axes(raw)
    if iod < 1e-6:
        raise LandmarkPointsError("the landmarks' eyes coincide")
    return raw + iod * (POINT_OFFSETS[:, :1] * u + POINT_OFFSETS[:, 1:] * v)


def frame_points(landmarks: np.ndarray, m: np.ndarray) -> np.ndarray:
    """(5, 2) alignment points in the video frame: `crop_points` through the inverse of the
    crop's 2x3 alignment matrix `m` (frame pixels -> crop pixels)."""
    import cv2

    return transform_points(cv2.invertAffineTransform(np.asarray(m, np.float64)),
                            crop_points(landmarks))  # fmt: skip
