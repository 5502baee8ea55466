"""The one 5-point face alignment, shared by training (rendered pairs) and tracking.

Points, in image order: eye centre image-left, eye centre image-right, nose tip,
mouth corner image-left, mouth corner image-right. They are mapped by a similarity
transform (rotation, uniform scale, translation; least squares, Umeyama 1991) onto a
fixed template, so a crop from the renderer and a crop from a video frame line up
exactly.
"""

from __future__ import annotations

import cv2
import numpy as np

# The widely used ArcFace 112 x 112 template, normalised to [0, 1] ...
_ARCFACE = (
    np.array(
        [
            [38.2946, 51.6963],
            [73.5318, 51.5014],
            [56.0252, 71.7366],
            [41.5493, 92.3655],
            [70.7299, 92.2041],
        ]
    )
    / 112.0
)
# ... pulled toward the centre so the crop keeps brows, jaw line and chin (face parsing
# and AU estimation need them; recognition crops cut them off).
TEMPLATE_SHRINK = 0.72
TEMPLATE = 0.5 + (_ARCFACE - 0.5) * TEMPLATE_SHRINK
TEMPLATE[:, 1] -= 0.03  # a little more chin than forehead


class AlignmentError(ValueError):
    """The 5 points cannot define a crop (wrong shape, non-finite or degenerate)."""


def similarity_transform(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """2x3 matrix of the least-squares similarity mapping src points onto dst points."""
    src = np.asarray(src, dtype=np.float64)
    dst = np.asarray(dst, dtype=np.float64)
    mu_s, mu_d = src.mean(0), dst.mean(0)
    s0, d0 = src - mu_s, dst - mu_d
    var = (s0**2).sum() / len(src)
    if var < 1e-12:
        raise AlignmentError("alignment points coincide")
    cov = d0.T @ s0 / len(src)
    u, sig, vt = np.linalg.svd(cov)
    fix = np.eye(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        fix[1, 1] = -1.0
    rot = u @ fix @ vt
    scale = np.trace(np.diag(sig) @ fix) / var
    m = np.zeros((2, 3))
    m[:, :2] = scale * rot
    m[:, 2] = mu_d - scale * rot @ mu_s
    return m


def alignment_matrix(points5: np.ndarray, size: int) -> np.ndarray:
    """2x3 matrix taking image pixels to the aligned crop of `size` x `size` pixels."""
    pts = np.asarray(points5, dtype=np.float64)
    if pts.shape != (5, 2) or not np.all(np.isfinite(pts)):
        raise AlignmentError(f"need 5 finite (x, y) points, got shape {pts.shape}")
    return similarity_transform(pts, TEMPLATE * size)


def align_face(
    image: np.ndarray,
    points5: np.ndarray,
    size: int,
    interpolation: int = cv2.INTER_LINEAR,
    border_value: float = 0.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Warp `image` to the aligned crop; returns (crop, 2x3 matrix)."""
    m = alignment_matrix(points5, size)
    crop = cv2.warpAffine(
        image,
        m,
        (size, size),
        flags=interpolation,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=(border_value,) * 4,
    )
    return crop, m


def crop_roll(m: np.ndarray) -> float:
    """Degrees of in-plane rotation that the alignment `m` takes out of the face.

    In the rig's head_roll sign: a face rolled by r degrees (and otherwise frontal) gives
    about r. A regressor trained on head_roll minus this angle (model.roll_in_crop) reads
    only what the crop still shows; the tracker adds its own crop's angle back.
    """
    return float(np.degrees(np.arctan2(m[1, 0], m[0, 0])))


def transform_points(m: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Apply a 2x3 matrix to (N, 2) points."""
    pts = np.asarray(points, dtype=np.float64)
    return pts @ m[:, :2].T + m[:, 2]
