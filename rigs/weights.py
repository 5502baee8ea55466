"""Bone rest positions and skin weights (bpy-free).

Weights are smooth blobs around each local bone, masked above or below the lip
line so the lips can part; what the blobs leave goes to the jaw below the mouth
and to the head elsewhere. Rigid parts (eyeballs, lids, teeth) belong to one bone.
"""

from __future__ import annotations

import numpy as np

from . import surface as s

# bone -> ((x, z) on the surface or a fixed point, radii (x, y, z), mask)
# mask: "above" / "below" the lip line, or None.
BLOBS: dict[str, tuple[tuple[float, float], tuple[float, float, float], str | None]] = {
    "forehead": ((0.0, 0.52), (0.42, 0.5, 0.18), None),
    "nose": ((0.0, -0.10), (0.10, 0.4, 0.16), "above"),
    "nose_tip": ((0.0, s.Z_NOSE_TIP), (0.06, 0.3, 0.05), "above"),
    "lip_up": ((0.0, s.Z_MOUTH + 0.02), (0.06, 0.3, 0.05), "above"),
    "lip_lo": ((0.0, s.Z_MOUTH - 0.03), (0.06, 0.3, 0.05), "below"),
    "chin": ((0.0, s.Z_CHIN), (0.14, 0.3, 0.12), "below"),
}
for _side, _sx in (("L", 1.0), ("R", -1.0)):
    BLOBS.update(
        {
            f"brow_in.{_side}": ((_sx * 0.11, 0.17), (0.08, 0.3, 0.065), None),
            f"brow_mid.{_side}": ((_sx * 0.26, 0.20), (0.08, 0.3, 0.065), None),
            f"brow_out.{_side}": ((_sx * 0.41, 0.16), (0.08, 0.3, 0.065), None),
            f"eye_socket.{_side}": ((_sx * s.EYE_X, s.EYE_Z), (0.15, 0.3, 0.11), None),
            f"cheek.{_side}": ((_sx * 0.33, -0.30), (0.12, 0.3, 0.12), None),
            f"cheekbone.{_side}": ((_sx * 0.47, -0.10), (0.10, 0.3, 0.10), None),
            f"nostril.{_side}": ((_sx * 0.075, -0.30), (0.04, 0.3, 0.035), "above"),
            f"lip_up.{_side}": ((_sx * 0.10, s.Z_MOUTH + 0.015), (0.05, 0.3, 0.05), "above"),
            f"lip_lo.{_side}": ((_sx * 0.10, s.Z_MOUTH - 0.025), (0.05, 0.3, 0.05), "below"),
            f"corner.{_side}": ((_sx * s.X_CORNER, s.Z_MOUTH), (0.05, 0.3, 0.05), None),
            f"jaw_angle.{_side}": ((_sx * 0.55, -0.55), (0.15, 0.4, 0.15), None),
        }
    )
CRANIUM = ((0.0, 0.1, 0.95), (0.9, 1.3, 0.4))


def bone_heads() -> dict[str, np.ndarray]:
    """Rest position of every bone's head (its pivot)."""
    heads = {
        "neck": np.array([0.0, 0.2, -1.3]),
        "head": np.array([0.0, 0.15, -0.55]),
        "cranium": np.array(CRANIUM[0]),
        "mouth": s.on_surface(0.0, s.Z_MOUTH, 0.05),
        "jaw": np.array([0.0, 0.1, -0.12]),
    }
    for name, ((x, z), _r, _m) in BLOBS.items():
        heads[name] = s.on_surface(x, z, 0.03)
    for side, sx in (("L", 1.0), ("R", -1.0)):
        heads[f"brow.{side}"] = s.on_surface(sx * 0.26, 0.18, 0.03)
        for b in ("eye_socket", "eye", "lid_up", "lid_lo"):
            heads[f"{b}.{side}"] = s.eye_centre(sx)
    return heads


def _blob(v: np.ndarray, centre: np.ndarray, radii: tuple[float, float, float]) -> np.ndarray:
    return np.exp(-0.5 * (((v - centre) / np.asarray(radii)) ** 2).sum(axis=1))


def jaw_share(v: np.ndarray) -> np.ndarray:
    """How much of a skin vertex's base weight follows the jaw (rest goes to the head)."""
    x, y, z = v[:, 0], v[:, 1], v[:, 2]
    inside = 1.0 - s.smoothstep(s.X_CORNER - 0.02, s.X_CORNER + 0.10, np.abs(x))
    below = (z < s.Z_MOUTH).astype(np.float64)
    soft = s.smoothstep(s.Z_MOUTH - 0.02, s.Z_MOUTH - 0.15, z)
    return (inside * below + (1.0 - inside) * soft) * (1.0 - s.smoothstep(-0.2, 0.25, y))


def skin_weights(v: np.ndarray, bones: list[str]) -> np.ndarray:
    """Weights (V, len(bones)) for skin-like vertices (skin, brows)."""
    heads = bone_heads()
    col = {b: i for i, b in enumerate(bones)}
    w = np.zeros((len(v), len(bones)))
    below = v[:, 2] < s.Z_MOUTH
    for name, (_xz, radii, mask) in BLOBS.items():
        b = _blob(v, heads[name], radii)
        if mask == "above":
            b = b * ~below
        elif mask == "below":
            b = b * below
        w[:, col[name]] = b
    w[:, col["cranium"]] = _blob(v, np.array(CRANIUM[0]), CRANIUM[1])
    total = w.sum(axis=1, keepdims=True)
    w = np.where(total > 1.0, w / np.maximum(total, 1e-9), w)
    rest = 1.0 - w.sum(axis=1)
    jaw = jaw_share(v)
    w[:, col["jaw"]] += rest * jaw
    w[:, col["head"]] += rest * (1.0 - jaw)
    return w


def rigid_weights(n: int, bones: list[str], bone: str) -> np.ndarray:
    w = np.zeros((n, len(bones)))
    w[:, bones.index(bone)] = 1.0
    return w


def cavity_weights(v: np.ndarray, bones: list[str]) -> np.ndarray:
    jaw = s.smoothstep(s.Z_MOUTH + 0.01, s.Z_MOUTH - 0.03, v[:, 2])
    w = np.zeros((len(v), len(bones)))
    w[:, bones.index("jaw")] = jaw
    w[:, bones.index("head")] = 1.0 - jaw
    return w
