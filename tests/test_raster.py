"""The z-buffered label rasteriser against shapes with known pixel coverage."""

import numpy as np
import pytest

from ml.data.raster import rasterize_labels
from rigs.geometry import triangulate


def _square(x0, y0, x1, y1, depth, label, base=0):
    xy = np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], dtype=float)
    tris, labs = triangulate([(base, base + 1, base + 2, base + 3)], np.array([label]))
    return xy, np.full(4, depth), tris, labs


def test_square_covers_exactly_its_pixel_centres():
    xy, d, tris, labs = _square(2.5, 3.5, 10.5, 6.5, 5.0, 7)
    out = rasterize_labels(xy, d, tris, labs, 16)
    expected = np.zeros((16, 16), np.uint8)
    expected[4:7, 3:11] = 7  # centres (integers) from 3..10 in x and 4..6 in y
    np.testing.assert_array_equal(out, expected)


def test_nearer_triangle_wins_whatever_the_order():
    a = _square(0, 0, 15, 15, 9.0, 1)
    b = _square(4, 4, 8, 8, 2.0, 2, base=4)
    xy = np.vstack([a[0], b[0]])
    d = np.concatenate([a[1], b[1]])
    for order in ([0, 1], [1, 0]):
        tris = np.vstack([[a[2], b[2]][i] for i in order])
        labs = np.concatenate([[a[3], b[3]][i] for i in order])
        out = rasterize_labels(xy, d, tris, labs, 16)
        assert out[6, 6] == 2 and out[1, 1] == 1 and out[12, 12] == 1


def test_tiny_triangles_tile_without_holes():
    """A 64 x 64 grid of sub-pixel quads covers every pixel centre it spans."""
    n = 200
    g = np.linspace(-0.7, 63.7, n)
    xx, yy = np.meshgrid(g, g)
    xy = np.c_[xx.ravel(), yy.ravel()]
    faces = [
        (r * n + c, r * n + c + 1, (r + 1) * n + c + 1, (r + 1) * n + c)
        for r in range(n - 1)
        for c in range(n - 1)
    ]
    tris, labs = triangulate(faces, np.full(len(faces), 3))
    out = rasterize_labels(xy, np.ones(len(xy)), tris, labs, 64)
    assert np.all(out == 3)


def test_points_behind_the_camera_are_dropped():
    xy, d, tris, labs = _square(0, 0, 8, 8, -1.0, 5)
    assert not rasterize_labels(xy, d, tris, labs, 8).any()


def test_too_large_triangles_raise():
    xy, d, tris, labs = _square(-2000, -2000, 2000, 2000, 1.0, 5)
    with pytest.raises(ValueError, match="spans more than"):
        rasterize_labels(xy, d, tris, labs, 64)
