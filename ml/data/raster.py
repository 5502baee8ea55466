"""Label masks by z-buffered rasterisation of projected triangles (numpy, bpy-free).

Rendering the mask costs a second Cycles render per pair; rasterising the posed
mesh that the landmarks already need is exact at pixel centres and much cheaper.
"""

from __future__ import annotations

import numpy as np

BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)  # bounding-box sizes handled per pass


def _bucket(
    xy: np.ndarray,
    depth: np.ndarray,
    labels: np.ndarray,
    size: int,
    k: int,
    zbuf: np.ndarray,
    out: np.ndarray,
) -> None:
    """Rasterise triangles whose bounding box fits k x k pixels into zbuf / out."""
    lo = np.ceil(np.minimum(np.minimum(xy[:, 0], xy[:, 1]), xy[:, 2])).astype(np.int64)
    offs = np.arange(k)
    px = lo[:, None, None, 0] + offs[None, None, :]  # (T, 1, k)
    py = lo[:, None, None, 1] + offs[None, :, None]  # (T, k, 1)
    cx, cy = px.astype(np.float64), py.astype(np.float64)  # pixel centres are integers
    a, b, c = xy[:, 0], xy[:, 1], xy[:, 2]
    den = (b[:, 1] - c[:, 1]) * (a[:, 0] - c[:, 0]) + (c[:, 0] - b[:, 0]) * (a[:, 1] - c[:, 1])
    ok = np.abs(den) > 1e-12
    den = np.where(ok, den, 1.0)[:, None, None]
    w0 = (
        (b[:, None, None, 1] - c[:, None, None, 1]) * (cx - c[:, None, None, 0])
        + (c[:, None, None, 0] - b[:, None, None, 0]) * (cy - c[:, None, None, 1])
    ) / den
    w1 = (
        (c[:, None, None, 1] - a[:, None, None, 1]) * (cx - c[:, None, None, 0])
        + (a[:, None, None, 0] - c[:, None, None, 0]) * (cy - c[:, None, None, 1])
    ) / den
    w2 = 1.0 - w0 - w1
    eps = -1e-9
    inside = (w0 >= eps) & (w1 >= eps) & (w2 >= eps) & ok[:, None, None]
    inside &= (px >= 0) & (px < size) & (py >= 0) & (py < size)
    z = w0 * depth[:, 0, None, None] + w1 * depth[:, 1, None, None] + w2 * depth[:, 2, None, None]
    t, iy, ix = np.nonzero(inside)
    if len(t) == 0:
        return
    pix = (py[t, iy, 0] * size + px[t, 0, ix]).astype(np.int64)
    zz = z[t, iy, ix]
    order = np.lexsort((zz, pix))  # by pixel, nearest first
    pix, zz, lab = pix[order], zz[order], labels[t[order]]
    first = np.ones(len(pix), dtype=bool)
    first[1:] = pix[1:] != pix[:-1]
    pix, zz, lab = pix[first], zz[first], lab[first]
    closer = zz < zbuf[pix]
    zbuf[pix[closer]] = zz[closer]
    out[pix[closer]] = lab[closer]


def rasterize_labels(
    xy: np.ndarray,
    depth: np.ndarray,
    tris: np.ndarray,
    tri_labels: np.ndarray,
    size: int,
    cullable: np.ndarray | None = None,
) -> np.ndarray:
    """(size, size) uint8 label of the nearest triangle at each pixel centre, 0 where none.

    xy: (V, 2) pixel coordinates (x right, y down, OpenCV convention: pixel centres at
    integers); depth: (V,) distance along the view. `cullable` marks triangles wound
    counter-clockwise seen from outside (their back faces are never visible): those facing
    away from the camera are skipped, which halves the work on closed surfaces.
    """
    xy = xy.astype(np.float32)
    txy, tz = xy[tris], depth.astype(np.float32)[tris]  # (T, 3, 2), (T, 3)
    lo = np.minimum(np.minimum(txy[:, 0], txy[:, 1]), txy[:, 2])  # (T, 2)
    hi = np.maximum(np.maximum(txy[:, 0], txy[:, 1]), txy[:, 2])
    front = (tz[:, 0] > 0) & (tz[:, 1] > 0) & (tz[:, 2] > 0)
    n = np.floor(hi) - np.ceil(lo) + 1  # pixel centres inside the bounding box, per axis
    need = np.maximum(n[:, 0], n[:, 1])
    visible = front & (n[:, 0] >= 1) & (n[:, 1] >= 1) & (hi[:, 0] >= 0) & (hi[:, 1] >= 0)
    visible &= (lo[:, 0] < size) & (lo[:, 1] < size)
    if cullable is not None:
        e1, e2 = txy[:, 1] - txy[:, 0], txy[:, 2] - txy[:, 0]
        area = e1[:, 0] * e2[:, 1] - e1[:, 1] * e2[:, 0]  # < 0: front-facing (y points down)
        visible &= ~(cullable & (area > 0))
    zbuf = np.full(size * size, np.inf)
    out = np.zeros(size * size, dtype=np.uint8)
    lower = 0
    for k in BUCKETS:  # triangles needing at most k x k candidate pixel centres
        sel = visible & (need > lower) & (need <= k)
        if sel.any():
            _bucket(txy[sel], tz[sel], tri_labels[sel], size, k, zbuf, out)
        lower = k
    if (visible & (need > BUCKETS[-1])).any():
        raise ValueError(f"a triangle spans more than {BUCKETS[-1]} pixels; image too large")
    return out.reshape(size, size)
