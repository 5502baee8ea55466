"""Smaller face parts (bpy-free): brows, teeth, mouth cavity and neck."""

from __future__ import annotations

import numpy as np

from . import surface as s
from .parts import Part, grid_faces

BROW_T = np.linspace(0.0, 1.0, 15)  # along the brow, inner (0) to outer (1)


def brow_centre(t: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Base (straight) brow: x, z of the centre line and half thickness along t."""
    x = 0.10 + 0.33 * t
    z = 0.175 + 0.02 * np.sin(np.pi * t**0.8) - 0.015 * t
    half = 0.024 * (1 - t) + 0.011 * t
    return x, z, half


def brow(side: float) -> Part:
    """A thin dark band lying just on the skin above the eye."""
    x, z, half = brow_centre(BROW_T)
    across = np.array([-1.0, -0.33, 0.33, 1.0])
    xx = np.broadcast_to(x, (4, len(x)))
    zz = z[None, :] + across[:, None] * half[None, :]
    yy = s.surface_y(xx, zz) - 0.008
    verts = np.stack([side * xx, yy, zz], axis=-1).reshape(-1, 3)
    faces = grid_faces(4, len(x), False)
    label = "brow_l" if side > 0 else "brow_r"
    cols = len(x)
    named = {f"centre_{k}": cols + k for k in range(cols)}  # row just below the middle
    return Part(
        f"brow_{'L' if side > 0 else 'R'}",
        verts,
        list(faces),
        ["brow"] * len(faces),
        [label] * len(faces),
        named,
        side,
    )


def teeth(upper: bool) -> Part:
    """A curved white band behind the lips; the lower one rides on the jaw."""
    x = np.linspace(-0.13, 0.13, 13)
    y0 = float(s.surface_y(0.0, s.Z_MOUTH)) + 0.05
    z = s.Z_MOUTH + (np.array([0.004, 0.027, 0.05]) if upper else -np.array([0.006, 0.028, 0.05]))
    xx, zz = np.meshgrid(x, z)
    yy = y0 + 2.0 * xx**2
    verts = np.stack([xx, yy, zz], axis=-1).reshape(-1, 3)
    faces = grid_faces(len(z), len(x), False)
    return Part(
        "teeth_up" if upper else "teeth_lo",
        verts,
        list(faces),
        ["teeth"] * len(faces),
        ["inner_mouth"] * len(faces),
    )


def cavity() -> Part:
    """Dark inside of the mouth, seen when the lips part."""
    y0 = float(s.surface_y(0.0, s.Z_MOUTH)) + 0.055
    polar = np.radians(np.linspace(10.0, 170.0, 10))
    lon = np.linspace(0, 2 * np.pi, 20, endpoint=False)
    pp, ll = np.meshgrid(polar, lon, indexing="ij")
    d = np.stack([np.sin(pp) * np.cos(ll), -np.cos(pp), np.sin(pp) * np.sin(ll)], axis=-1)
    radii = np.array([0.14, 0.10, 0.11])
    centre = np.array([0.0, y0 + radii[1], s.Z_MOUTH])
    verts = (centre + d * radii).reshape(-1, 3)
    faces = grid_faces(len(polar), len(lon), True)
    return Part("cavity", verts, list(faces), ["mouth"] * len(faces), ["inner_mouth"] * len(faces))


def neck() -> Part:
    """An elliptic cylinder from inside the head down past the frame."""
    z = np.linspace(-0.3, -2.0, 9)
    a = np.linspace(0, 2 * np.pi, 28, endpoint=False)
    zz, aa = np.meshgrid(z, a, indexing="ij")
    flare = 1.0 + 0.12 * s.smoothstep(-1.5, -2.0, zz)
    verts = np.stack([0.40 * flare * np.sin(aa), 0.2 - 0.34 * flare * np.cos(aa), zz], axis=-1)
    faces = grid_faces(len(z), len(a), True)
    return Part(
        "neck", verts.reshape(-1, 3), list(faces), ["skin"] * len(faces), ["neck"] * len(faces)
    )
