"""The 5 alignment points (align.py's convention) from the landmark network's 478 points.

The tracker steers the next frame's crop with them, so they must land where MTCNN's ONet
puts its points: the regressor was trained on crops aligned to that convention (renders are
aligned by the rig's own 5 points, chosen to match the detector). Each point is one landmark
or the mean of a few, plus an offset in the face's own frame: x along the eye line
(image-left eye to image-right eye), y across it (down the face), both in units of the
inter-ocular distance of the derived eyes, so the correction holds at any scale and roll.
The offset is a constant plus a slope times how far the face is turned (`turn`): on turned
faces ONet's points drift from the landmarks'. With the constant alone, crops steered on a
face turned by about 40 degrees (multispeaker, its first 765 frames) read head yaw 7.3
degrees away from MTCNN-aligned crops on average; with the slopes 3.5, the same as before
on frontal faces.

Measured 2026-12-06 (`python -m ml.bench.landmark_points VIDEOS --fit`): ONet's points
against the landmarks of the default bundle, both in the 256 px crop aligned by ONet's
points, on 485 frames with one confident face (presence and ONet score at least 0.9): all
72 of tests/media/single_face.mp4 and about 80 evenly spaced frames of each clip of the
real-face set (cap12_edit, cap13_edit2, franck, multispeaker, talking_short). For each part
the best of a few anatomical candidates (that command's CANDIDATES) once the offsets are
taken out (constant offsets): the eyes' contour means beat the iris centres (2.24 and 1.96
px), landmark 19 beat the nose tip 1 (2.38 px), 61 and 291 the inner mouth corners. Offsets
and slopes are then a least-squares fit over all frames. Mean distance from ONet's points
with them: MEAN_RESIDUAL_PX (1.2 to 4.2 px per point on the real clips but multispeaker,
whose smaller, turned faces give 3.6 to 6.1 px; the eyes are 58 px apart in the crop);
without offsets RAW_RESIDUAL_PX. tests/test_landmark_points.py re-measures on the sample video.
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
# (x along the eye line, y down the face) per point, in inter-ocular distances, for a
# frontal face; each changes by its POINT_OFFSET_SLOPES times the face's `turn`.
POINT_OFFSETS = np.array(
    [[-0.0028, -0.0136], [0.0305, -0.013], [0.0177, -0.1262], [0.0034, 0.0308], [0.0366, 0.0291]]
)
POINT_OFFSET_SLOPES = np.array(
    [[-0.1499, -0.1788], [-0.1746, 0.0359], [-0.2243, -0.1416], [-0.2523, -0.5248],
     [-0.4618, -0.1838]]
)  # fmt: skip
MEAN_RESIDUAL_PX = (1.94, 1.9, 2.18, 3.43, 2.45)  # 256 px crop; the points in align.py's order
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


def turn(raw: np.ndarray) -> float:
    """How far the face is turned: the nose point's offset from the eyes' midpoint along the
    eye line, in inter-ocular distances, of raw points (about 0 frontal; -0.5 the most
    turned face of the calibration frames, about 40 degrees of head yaw)."""
    u, _, iod = face_axes(raw)
    return float((raw[2] - (raw[0] + raw[1]) / 2) @ u) / max(iod, 1e-12)


def corrected(raw: np.ndarray, offsets: np.ndarray, slopes: np.ndarray) -> np.ndarray:
    """Raw points (5, 2) moved by offsets + slopes * turn, in the face's frame."""
    u, v, iod = face_axes(raw)
    off = offsets + slopes * turn(raw)
    return raw + iod * (off[:, :1] * u + off[:, 1:] * v)


def crop_points(landmarks: np.ndarray) -> np.ndarray:
    """(5, 2) alignment points in the landmarks' own pixels (the crop's), with the offsets."""
    lm = np.asarray(landmarks, dtype=np.float64)
    if lm.ndim != 2 or lm.shape[0] != N_LANDMARKS or lm.shape[1] < 2:
        raise LandmarkPointsError(f"need ({N_LANDMARKS}, 2 or 3) landmarks, got {lm.shape}")
    raw = raw_points(lm)
    if not np.isfinite(raw).all():
        raise LandmarkPointsError("the landmarks are not finite")
    if face_axes(raw)[2] < 1e-6:
        raise LandmarkPointsError("the landmarks' eyes coincide")
    return corrected(raw, POINT_OFFSETS, POINT_OFFSET_SLOPES)


def frame_points(landmarks: np.ndarray, m: np.ndarray) -> np.ndarray:
    """(5, 2) alignment points in the video frame: `crop_points` through the inverse of the
    crop's 2x3 alignment matrix `m` (frame pixels -> crop pixels)."""
    import cv2

    return transform_points(cv2.invertAffineTransform(np.asarray(m, np.float64)),
                            crop_points(landmarks))  # fmt: skip
