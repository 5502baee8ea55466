"""The base head surface as closed-form functions (bpy-free).

The head is an ellipsoid narrowed toward the chin, with facial features added
as smooth bumps along the depth axis on the front. Face coordinates: +X is the
character's left, -Y is out of the face, +Z is up; the head is about 2 units
tall and centred on the origin.
"""

from __future__ import annotations

import numpy as np

A, B, C = 0.80, 0.95, 1.08  # half width, half depth, half height
Z_MOUTH = -0.54  # lip line: eye-to-mouth about 1.05 x the eye spacing, as in real faces
X_CORNER = 0.185  # mouth corner, |x|
EYE_X, EYE_Z = 0.265, 0.02  # eyeball centre (x, z)
EYE_R = 0.115  # eyeball radius
EYE_PROTRUDE = 0.06  # how far the eyeball front stands out of the socket skin
Z_NOSE_TIP = -0.28
Z_CHIN = -0.84


def smoothstep(e0: float, e1: float, x: np.ndarray | float) -> np.ndarray:
    """Hermite step from 0 at e0 to 1 at e1 (e1 may be below e0)."""
    t = np.clip((np.asarray(x, dtype=np.float64) - e0) / (e1 - e0), 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def gauss(x: np.ndarray, z: np.ndarray, cx: float, cz: float, sx: float, sz: float) -> np.ndarray:
    return np.exp(-0.5 * (((x - cx) / sx) ** 2 + ((z - cz) / sz) ** 2))


def narrowing(z: np.ndarray) -> np.ndarray:
    """Width factor: the lower face tapers toward the chin."""
    return 1.0 - 0.24 * smoothstep(-0.05, -1.0, z)


def nose_bump(x: np.ndarray, z: np.ndarray) -> np.ndarray:
    """Outward displacement of the nose: bridge ridge, rounded tip and alae."""
    t = np.clip((0.08 - z) / 0.36, 0.0, 1.0)
    width = 0.045 + 0.04 * t
    bridge = (0.03 + 0.13 * t) * np.exp(-0.5 * (x / width) ** 2)
    bridge = bridge * smoothstep(-0.35, -0.27, z) * (1.0 - smoothstep(0.06, 0.16, z))
    tip = 0.075 * gauss(x, z, 0.0, Z_NOSE_TIP, 0.055, 0.05)
    alae = 0.06 * gauss(np.abs(x), z, 0.075, -0.30, 0.045, 0.04)
    return bridge + tip + alae


def feature_bump(x: np.ndarray, z: np.ndarray) -> np.ndarray:
    """Outward displacement (toward -Y) of every facial feature at (x, z)."""
    ax = np.abs(x)
    d = nose_bump(x, z)
    d = d - 0.14 * gauss(ax, z, EYE_X, EYE_Z, 0.12, 0.085)  # eye sockets
    d = d + 0.05 * gauss(ax, z, 0.27, 0.17, 0.17, 0.05)  # brow ridge
    d = d + 0.04 * gauss(ax, z, 0.46, -0.10, 0.12, 0.10)  # cheekbones
    d = d + 0.05 * gauss(x, z, 0.0, Z_MOUTH + 0.07, 0.20, 0.07)  # maxilla
    d = d + 0.035 * gauss(x, z, 0.0, Z_MOUTH + 0.025, 0.14, 0.025)  # upper lip
    d = d + 0.035 * gauss(x, z, 0.0, Z_MOUTH - 0.035, 0.12, 0.03)  # lower lip
    d = d - 0.02 * gauss(x, z, 0.0, Z_MOUTH - 0.15, 0.12, 0.03)  # mentolabial sulcus
    d = d + 0.07 * gauss(x, z, 0.0, Z_CHIN, 0.13, 0.08)  # chin
    return d


def front_weight(y_base: np.ndarray) -> np.ndarray:
    """1 on the front of the head, fading to 0 toward the sides."""
    return smoothstep(0.0, 0.55, -y_base / B)


def ellipsoid(theta: np.ndarray, phi: np.ndarray) -> np.ndarray:
    """Base head points for azimuth theta (0 = front) and elevation phi."""
    z = C * np.sin(phi)
    x = A * narrowing(z) * np.cos(phi) * np.sin(theta)
    y = -B * np.cos(phi) * np.cos(theta)
    return np.stack([x, y, z], axis=-1)


def displace(p: np.ndarray) -> np.ndarray:
    """Add the facial features to base ellipsoid points of shape (..., 3)."""
    out = p.copy()
    out[..., 1] -= feature_bump(p[..., 0], p[..., 2]) * front_weight(p[..., 1])
    return out


def surface_y(x: np.ndarray | float, z: np.ndarray | float) -> np.ndarray:
    """Depth of the front skin surface at (x, z), features included."""
    x = np.asarray(x, dtype=np.float64)
    z = np.asarray(z, dtype=np.float64)
    r = 1.0 - (x / (A * narrowing(z))) ** 2 - (z / C) ** 2
    y_base = -B * np.sqrt(np.clip(r, 0.0, None))
    return y_base - feature_bump(x, z) * front_weight(y_base)


def eye_centre(side: float) -> np.ndarray:
    """Eyeball centre; side is +1 for the left eye (+X), -1 for the right."""
    y = float(surface_y(EYE_X, EYE_Z)) - EYE_PROTRUDE + EYE_R
    return np.array([side * EYE_X, y, EYE_Z])


def on_surface(x: float, z: float, inset: float = 0.0) -> np.ndarray:
    """A point on the front surface at (x, z), pushed inward by `inset`."""
    return np.array([x, float(surface_y(x, z)) + inset, z])
