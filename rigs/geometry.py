"""The whole face mesh as arrays (bpy-free): vertices, polygons, materials, labels,
skin weights and landmark vertices. The Blender builder only copies this into bpy."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from . import features, parts, weights
from .spec import RigSpec, load_spec

# Look of each material: base colour (linear RGB) and roughness.
MATERIALS: dict[str, tuple[tuple[float, float, float], float]] = {
    "skin": ((0.62, 0.40, 0.30), 0.55),
    "lip": ((0.50, 0.20, 0.18), 0.45),
    "hair": ((0.045, 0.03, 0.022), 0.7),
    "brow": ((0.035, 0.025, 0.02), 0.8),
    "lash": ((0.02, 0.015, 0.012), 0.8),
    "sclera": ((0.80, 0.78, 0.74), 0.3),
    "iris": ((0.12, 0.07, 0.035), 0.3),
    "pupil": ((0.005, 0.005, 0.005), 0.2),
    "teeth": ((0.78, 0.75, 0.66), 0.35),
    "mouth": ((0.03, 0.005, 0.005), 0.8),
}

# iBUG 68: which part holds each eye and brow point, and its named vertex there.
_EYE_POINTS = {
    36: ("lid_lower_R", "edge_-60"),
    37: ("lid_upper_R", "edge_-20"),
    38: ("lid_upper_R", "edge_20"),
    39: ("lid_lower_R", "edge_60"),
    40: ("lid_lower_R", "edge_20"),
    41: ("lid_lower_R", "edge_-20"),
    42: ("lid_lower_L", "edge_-60"),
    43: ("lid_upper_L", "edge_-20"),
    44: ("lid_upper_L", "edge_20"),
    45: ("lid_lower_L", "edge_60"),
    46: ("lid_lower_L", "edge_20"),
    47: ("lid_lower_L", "edge_-20"),
}
_BROW_POINTS = {17 + i: ("brow_R", f"centre_{k}") for i, k in enumerate((14, 11, 7, 3, 0))}
_BROW_POINTS.update({22 + i: ("brow_L", f"centre_{k}") for i, k in enumerate((0, 3, 7, 11, 14))})
LM5_NAMES = ("eye_r", "eye_l", "nose", "mouth_r", "mouth_l")  # image order: left to right


@dataclass
class FaceMesh:
    verts: np.ndarray  # (V, 3) rest positions
    faces: list[tuple[int, ...]]
    face_material: np.ndarray  # (F,) index into `materials`
    face_label: np.ndarray  # (F,) label id (spec.labels)
    materials: list[str]
    bones: list[str]  # deform bones, columns of `weights`
    weights: np.ndarray  # (V, len(bones))
    lm68: list[int]  # vertex index per iBUG point
    lm5: list[tuple[int, int]]  # per alignment point (LM5_NAMES order): the mean of 2 vertices
    bone_heads: dict[str, np.ndarray]
    face_part: np.ndarray  # (F,) index into `part_names`
    part_names: list[str]

    def lm5_of(self, points: np.ndarray) -> np.ndarray:
        """The 5 alignment points (5, D) from per-vertex positions (V, D)."""
        idx = np.array(self.lm5)
        return (points[idx[:, 0]] + points[idx[:, 1]]) / 2.0


# Where MTCNN (the tracker's detector) puts its 5 points on renders of this rig, relative to
# `FaceMesh.lm5_of`: mean offsets in units of the inter-ocular distance, in the face's frame
# (x along the eye line toward the image-right eye, y across it, image-down). Measured by
# `python ml/blender/calibrate_landmarks.py` (400 renders, sparse and uniform random AUs), then made
# mirror-symmetric: the detector is, but the renders' key light comes from one side.
# Measured: eyes (0.042, -0.070) and (0.018, -0.084), nose (0.042, -0.017), mouth corners
# (-0.014, 0.085) and (0.027, 0.063): MTCNN reads the eyes higher and the corners lower.
DETECTOR_OFFSETS = np.array(
    [[0.012, -0.077], [-0.012, -0.077], [0.0, -0.017], [-0.0205, 0.074], [0.0205, 0.074]]
)


def detector_points(lm5: np.ndarray) -> np.ndarray:
    """The rig's 5 image-space alignment points (5, 2) moved to where the tracker's detector
    puts them, so renders are cropped the way the tracker crops real faces."""
    ax = lm5[1] - lm5[0]
    iod = float(np.linalg.norm(ax))
    ax = ax / iod
    ay = np.array([-ax[1], ax[0]])
    return lm5 + iod * (DETECTOR_OFFSETS[:, :1] * ax + DETECTOR_OFFSETS[:, 1:] * ay)


def _parts() -> list[parts.Part]:
    out = [
        parts.skin(),
        features.neck(),
        features.cavity(),
        features.teeth(True),
        features.teeth(False),
    ]
    for side in (1.0, -1.0):
        out += [
            parts.eyeball(side),
            parts.lid(side, True),
            parts.lid(side, False),
            features.brow(side),
        ]
    return out


def _part_weights(p: parts.Part, bones: list[str]) -> np.ndarray:
    side = "L" if p.side > 0 else "R"
    rigid = {
        "neck": "neck",
        "teeth_up": "head",
        "teeth_lo": "jaw",
        f"eye_{side}": f"eye.{side}",
        f"lid_upper_{side}": f"lid_up.{side}",
        f"lid_lower_{side}": f"lid_lo.{side}",
    }
    if p.name in rigid:
        return weights.rigid_weights(len(p.verts), bones, rigid[p.name])
    if p.name == "cavity":
        return weights.cavity_weights(p.verts, bones)
    return weights.skin_weights(p.verts, bones)


@lru_cache(maxsize=1)
def build_face_mesh(spec: RigSpec | None = None) -> FaceMesh:
    """Assemble all parts into one mesh; deterministic (pure numpy, no randomness)."""
    spec = spec or load_spec()
    bones = [b.name for b in spec.bones if b.deform]
    mats = list(MATERIALS)
    verts, faces, fmat, flab, wts, fpart = [], [], [], [], [], []
    part_names: list[str] = []
    named: dict[str, dict[str, int]] = {}
    offset = 0
    for p in _parts():
        verts.append(p.verts)
        faces += [tuple(offset + i for i in f) for f in p.faces]
        fmat += [mats.index(m) for m in p.material]
        flab += [spec.labels.index(lab) for lab in p.label]
        wts.append(_part_weights(p, bones))
        fpart += [len(part_names)] * len(p.faces)
        part_names.append(p.name)
        named[p.name] = {k: offset + v for k, v in p.named.items()}
        offset += len(p.verts)
    skin = named["skin"]
    lm68 = [skin.get(f"lm68_{k:02d}", -1) for k in range(68)]
    for k, (part, key) in {**_EYE_POINTS, **_BROW_POINTS}.items():
        lm68[k] = named[part][key]
    eye_r, eye_l = named["eye_R"]["lm5_eye_r"], named["eye_L"]["lm5_eye_l"]
    lm5 = [
        (eye_r, eye_r),
        (eye_l, eye_l),
        (skin["lm5_nose"], skin["lm5_nose"]),
        (skin["lm5_mouth_r"], skin["corner_lo_r"]),
        (skin["lm5_mouth_l"], skin["corner_lo_l"]),
    ]
    assert min(lm68) >= 0, "every iBUG point needs a vertex"
    return FaceMesh(
        np.vstack(verts),
        faces,
        np.array(fmat),
        np.array(flab),
        mats,
        bones,
        np.vstack(wts),
        lm68,
        lm5,
        weights.bone_heads(),
        np.array(fpart),
        part_names,
    )


def orient_outward(verts: np.ndarray, tris: np.ndarray, centres: np.ndarray) -> np.ndarray:
    """Reorder each triangle so its normal points away from its centre (V, T, centres (T, 3))."""
    a, b, c = verts[tris[:, 0]], verts[tris[:, 1]], verts[tris[:, 2]]
    normal = np.cross(b - a, c - a)
    flip = (normal * ((a + b + c) / 3 - centres)).sum(axis=1) < 0
    out = tris.copy()
    out[flip, 1], out[flip, 2] = tris[flip, 2], tris[flip, 1]
    return out


def triangulate(faces: list[tuple[int, ...]], labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Fan-triangulate polygons: (T, 3) vertex indices and the label of each triangle."""
    tris, tri_labels = [], []
    for f, lab in zip(faces, labels, strict=True):
        for k in range(1, len(f) - 1):
            tris.append((f[0], f[k], f[k + 1]))
            tri_labels.append(lab)
    return np.array(tris, dtype=np.int64), np.array(tri_labels, dtype=np.uint8)


def render_triangles(fm: FaceMesh) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Triangles wound outward, their labels, and which may be back-face culled.

    Every part is seen from outside only, except the mouth cavity (seen from inside).
    """
    tris, labels = triangulate(fm.faces, fm.face_label)
    tri_part = np.repeat(fm.face_part, [len(f) - 2 for f in fm.faces])
    names = np.array(fm.part_names)[tri_part]
    centroid = fm.verts[tris].mean(axis=1)
    centres = np.zeros_like(centroid)  # skin: the head centre
    for side in ("L", "R"):
        eye = np.isin(names, [f"eye_{side}", f"lid_upper_{side}", f"lid_lower_{side}"])
        centres[eye] = fm.bone_heads[f"eye.{side}"]
    neck = names == "neck"
    centres[neck] = np.c_[np.zeros(neck.sum()), np.full(neck.sum(), 0.2), centroid[neck, 2]]
    flat = np.char.startswith(names, "brow_") | np.char.startswith(names, "teeth_")
    centres[flat] = centroid[flat] + np.array([0.0, 1.0, 0.0])  # they face forward (-Y)
    return orient_outward(fm.verts, tris, centres), labels, names != "cavity"
