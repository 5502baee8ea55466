"""The shared 5-point alignment: exact on similarity-related points, clear errors."""

import cv2
import numpy as np
import pytest

from au_retarget_addon.core.align import (
    TEMPLATE,
    AlignmentError,
    align_face,
    alignment_matrix,
    transform_points,
)


def _similar(points, angle_deg, scale, shift):
    a = np.radians(angle_deg)
    r = scale * np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    return points @ r.T + shift


def test_points_related_by_a_similarity_land_on_the_template():
    pts = _similar(TEMPLATE * 100, 23.0, 1.7, np.array([40.0, -12.0]))
    m = alignment_matrix(pts, 128)
    np.testing.assert_allclose(transform_points(m, pts), TEMPLATE * 128, atol=1e-9)


def test_crop_moves_image_content_with_the_points():
    img = np.zeros((300, 300), np.uint8)
    pts = _similar(TEMPLATE * 120, -15.0, 1.2, np.array([60.0, 70.0]))
    for x, y in pts:
        cv2.circle(img, (round(x), round(y)), 3, 255, -1)
    crop, _ = align_face(img, pts, 96)
    for x, y in TEMPLATE * 96:
        assert crop[round(y), round(x)] > 100


def test_reflection_is_never_used():
    pts = TEMPLATE * 50
    mirrored = pts * np.array([-1.0, 1.0])  # left/right swapped: best fit is not a flip
    m = alignment_matrix(mirrored, 64)
    assert np.linalg.det(m[:, :2]) > 0


@pytest.mark.parametrize("bad", [np.zeros((4, 2)), np.full((5, 2), np.nan), np.ones((5, 2))])
def test_bad_points_raise(bad):
    with pytest.raises(AlignmentError):
        alignment_matrix(bad, 64)
