"""Mesh parts of the face as numpy arrays (bpy-free): skin, eyes, lids, brows, mouth, neck.

Each part returns a `Part`: vertices, polygons, a material and a label per polygon,
and named vertices for landmarks. `rigs.geometry` joins the parts into one mesh.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from . import surface as s

LID_LONGITUDES = np.radians(np.arange(-80.0, 81.0, 10.0))


@dataclass
class Part:
    name: str
    verts: np.ndarray  # (V, 3)
    faces: list[tuple[int, ...]]
    material: list[str]  # per face
    label: list[str]  # per face
    named: dict[str, int] = field(default_factory=dict)  # vertex names (part-local indices)
    side: float = 0.0  # +1 left, -1 right, 0 centre


def grid_faces(rows: int, cols: int, wrap: bool, skip=None) -> list[tuple[int, int, int, int]]:
    """Quads of a rows x cols vertex grid (row-major); `skip(r, c)` drops a quad."""
    faces = []
    for r in range(rows - 1):
        for c in range(cols if wrap else cols - 1):
            if skip is not None and skip(r, c):
                continue
            c1 = (c + 1) % cols
            faces.append((r * cols + c, r * cols + c1, (r + 1) * cols + c1, (r + 1) * cols + c))
    return faces


def skin_rows() -> tuple[np.ndarray, int]:
    """Elevation of each skin row, with two rows hugging the lip line (the mouth slit)."""
    phi = np.linspace(-np.pi / 2 + 0.03, np.pi / 2 - 0.03, 112)
    phi_m = np.arcsin(s.Z_MOUTH / s.C)
    phi = phi[np.abs(phi - phi_m) > 0.014]
    phi = np.sort(np.concatenate([phi, [phi_m - 0.0025, phi_m + 0.0025]]))
    return phi, int(np.searchsorted(phi, phi_m))  # index of the upper slit row


def lip_heights(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Height of the upper and lower vermilion above / below the lip line."""
    t = np.sqrt(np.clip(1.0 - (x / s.X_CORNER) ** 2, 0.0, 1.0))
    bow = 1.0 - 0.25 * np.exp(-0.5 * (x / 0.02) ** 2)  # cupid's bow dip at the centre
    return 0.05 * t**0.8 * bow + 0.004, 0.06 * t**0.8 + 0.004


def _skin_label(c: np.ndarray, theta: float) -> tuple[str, str]:
    x, y, z = c
    hairline = 0.68 - 0.45 * float(s.smoothstep(0.9, 1.6, abs(theta)))
    if z > hairline + 0.08 * (x / 0.5) ** 2 or (abs(theta) > 2.2 and z > -0.45):
        return "hair", "hair"
    up, lo = lip_heights(np.array(x))
    if abs(x) < s.X_CORNER and s.Z_MOUTH <= z < s.Z_MOUTH + float(up):
        return "lip", "upper_lip"
    if abs(x) < s.X_CORNER and s.Z_MOUTH - float(lo) < z < s.Z_MOUTH:
        return "lip", "lower_lip"
    if -0.36 < z < 0.1 and float(s.nose_bump(np.array(x), np.array(z))) > 0.03 and y < -0.5:
        return "skin", "nose"
    return "skin", "skin"


def skin() -> Part:
    """The head surface: a latitude-longitude grid with a slit between the lips and poles."""
    phi, slit = skin_rows()
    cols = 144
    theta = np.linspace(-np.pi, np.pi, cols, endpoint=False) + np.pi  # 0 (front) is a column
    theta = (theta + np.pi) % (2 * np.pi) - np.pi
    tt, pp = np.meshgrid(theta, phi)
    verts = s.displace(s.ellipsoid(tt, pp)).reshape(-1, 3)

    def in_slit(r: int, c: int) -> bool:
        x = verts[r * cols + c, 0], verts[r * cols + (c + 1) % cols, 0]
        return (
            r == slit - 1 and max(abs(x[0]), abs(x[1])) < s.X_CORNER and verts[r * cols + c, 1] < 0
        )

    faces: list[tuple[int, ...]] = list(grid_faces(len(phi), cols, True, in_slit))
    bottom, top = len(verts), len(verts) + 1
    verts = np.vstack(
        [verts, s.displace(s.ellipsoid(np.zeros(2), np.array([-np.pi / 2, np.pi / 2])))]
    )
    last = (len(phi) - 1) * cols
    faces += [(bottom, (c + 1) % cols, c) for c in range(cols)]
    faces += [(top, last + c, last + (c + 1) % cols) for c in range(cols)]
    mats, labels = [], []
    for f in faces:
        thetas = [theta[i % cols] for i in f if i < bottom]
        mat, lab = _skin_label(verts[list(f)].mean(axis=0), float(np.mean(np.abs(thetas))))
        mats.append(mat)
        labels.append(lab)
    named = _skin_named(verts, phi, slit, cols)
    return Part("skin", verts, faces, mats, labels, named)


def _nearest(verts: np.ndarray, cand: np.ndarray, x: float, z: float) -> int:
    d = (verts[cand, 0] - x) ** 2 + (verts[cand, 2] - z) ** 2
    return int(cand[np.argmin(d)])


def _skin_named(verts: np.ndarray, phi: np.ndarray, slit: int, cols: int) -> dict[str, int]:
    """Skin landmarks: jaw outline, nose, lip contours (iBUG numbering where it applies)."""
    front = np.flatnonzero(verts[:, 1] < -0.15)
    upper = np.arange(slit * cols, (slit + 1) * cols)
    lower = np.arange((slit - 1) * cols, slit * cols)
    upper, lower = upper[verts[upper, 1] < 0], lower[verts[lower, 1] < 0]
    out: dict[str, int] = {}
    for k in range(17):  # jaw 0..16, image left (character's right) to image right
        b = np.pi * k / 16
        out[f"lm68_{k:02d}"] = _nearest(verts, front, -0.74 * np.cos(b), -0.05 - 0.87 * np.sin(b))
    for k, z in enumerate((0.12, 0.0, -0.13)):
        out[f"lm68_{27 + k:02d}"] = _nearest(verts, front, 0.0, z)
    tip_zone = front[np.abs(verts[front, 0]) < 1e-6]
    out["lm68_30"] = int(tip_zone[np.argmin(verts[tip_zone, 1])])
    for k, x in enumerate((-0.07, -0.035, 0.0, 0.035, 0.07)):
        out[f"lm68_{31 + k:02d}"] = _nearest(verts, front, x, -0.335)
    corner_r = upper[np.argmin(np.abs(verts[upper, 0] + s.X_CORNER))]
    corner_l = upper[np.argmin(np.abs(verts[upper, 0] - s.X_CORNER))]
    out["lm68_48"], out["lm68_54"] = int(corner_r), int(corner_l)
    # the same corners on the lower lip: an open mouth's corner lies between the two
    out["corner_lo_r"] = int(lower[np.argmin(np.abs(verts[lower, 0] + s.X_CORNER))])
    out["corner_lo_l"] = int(lower[np.argmin(np.abs(verts[lower, 0] - s.X_CORNER))])
    for k, x in zip((49, 50, 51, 52, 53), (-0.12, -0.05, 0.0, 0.05, 0.12), strict=True):
        out[f"lm68_{k}"] = _nearest(verts, front, x, s.Z_MOUTH + float(lip_heights(np.array(x))[0]))
    for k, x in zip((55, 56, 57, 58, 59), (0.12, 0.05, 0.0, -0.05, -0.12), strict=True):
        out[f"lm68_{k}"] = _nearest(verts, front, x, s.Z_MOUTH - float(lip_heights(np.array(x))[1]))
    inner = {
        60: (upper, -s.X_CORNER + 0.025),
        61: (upper, -0.06),
        62: (upper, 0.0),
        63: (upper, 0.06),
        64: (upper, s.X_CORNER - 0.025),
        65: (lower, 0.06),
        66: (lower, 0.0),
        67: (lower, -0.06),
    }
    for k, (row, x) in inner.items():
        out[f"lm68_{k}"] = int(row[np.argmin(np.abs(verts[row, 0] - x))])
    out["lm5_nose"] = out["lm68_30"]
    out["lm5_mouth_r"], out["lm5_mouth_l"] = out["lm68_48"], out["lm68_54"]
    return out


def _sphere_dirs(polar: np.ndarray, lon: np.ndarray) -> np.ndarray:
    """Unit vectors around the forward axis (-Y): polar angle from forward, longitude."""
    pp, ll = np.meshgrid(polar, lon, indexing="ij")
    return np.stack([np.sin(pp) * np.cos(ll), -np.cos(pp), np.sin(pp) * np.sin(ll)], axis=-1)


def eyeball(side: float) -> Part:
    """Eyeball with the pole facing forward: pupil, iris and sclera rings."""
    polar = np.radians(np.linspace(4.0, 176.0, 30))
    lon = np.linspace(0, 2 * np.pi, 32, endpoint=False)
    dirs = _sphere_dirs(polar, lon).reshape(-1, 3)
    centre = s.eye_centre(side)
    verts = np.vstack(
        [
            centre + s.EYE_R * np.array([0.0, -1.0, 0.0]),
            centre + s.EYE_R * dirs,
            centre + s.EYE_R * np.array([0.0, 1.0, 0.0]),
        ]
    )
    n = len(lon)
    faces: list[tuple[int, ...]] = [(0, 1 + (i + 1) % n, 1 + i) for i in range(n)]
    faces += [tuple(1 + i for i in f) for f in grid_faces(len(polar), n, True)]
    back = len(verts) - 1
    last = 1 + (len(polar) - 1) * n
    faces += [(back, last + i, last + (i + 1) % n) for i in range(n)]
    ring = np.concatenate([[0.0], np.degrees(np.repeat(polar, n)), [180.0]])
    mats = []
    for f in faces:
        a = float(np.mean(ring[list(f)]))
        mats.append("pupil" if a < 9.0 else "iris" if a < 22.0 else "sclera")
    label = "eye_l" if side > 0 else "eye_r"
    return Part(
        f"eye_{'L' if side > 0 else 'R'}",
        verts,
        faces,
        mats,
        [label] * len(faces),
        {"lm5_eye_" + label[-1]: 0},
        side,
    )


def _lid_edge(lon: np.ndarray, upper: bool) -> np.ndarray:
    """Latitude of the lid edge: high at the centre, meeting near the corners (almond)."""
    shape = np.cos(np.clip(1.2 * lon, -np.pi / 2, np.pi / 2))
    return np.radians(24.0 * shape) if upper else -np.radians(20.0 * shape)


def lid(side: float, upper: bool) -> Part:
    """A spherical shell just outside the eyeball; rotating it about the eye centre blinks."""
    lon = LID_LONGITUDES
    edge = _lid_edge(lon, upper)
    far = np.radians(85.0 if upper else -80.0)
    t = np.linspace(0.0, 1.0, 8)[:, None]
    lat = edge[None, :] * (1 - t) + far * t  # (rows, cols), row 0 is the edge
    r = s.EYE_R + 0.006
    d = np.stack([np.cos(lat) * np.sin(lon), -np.cos(lat) * np.cos(lon), np.sin(lat)], axis=-1)
    verts = (s.eye_centre(side) + r * d).reshape(-1, 3)
    faces = grid_faces(lat.shape[0], lat.shape[1], False)
    cols = lat.shape[1]
    mats = ["lash" if upper and f[0] < cols else "skin" for f in faces]
    named = {}
    deg = np.round(np.degrees(lon)).astype(int)
    for k, v in enumerate(deg):
        named[f"edge_{v}"] = k
    tag = "upper" if upper else "lower"
    return Part(
        f"lid_{tag}_{'L' if side > 0 else 'R'}",
        verts,
        list(faces),
        mats,
        ["skin"] * len(faces),
        named,
        side,
    )
