"""Camera, lights and Cycles settings for rendering the face rig (runs inside Blender).

Used by the contact sheets and the training-pair renderer. The rig builder itself
never adds cameras or lights to a user's scene.
"""

from __future__ import annotations

import math
import os
import tempfile
import time
from typing import cast

import bpy
import cv2
import numpy as np

CAMERA_NAME = "AURT_Camera"
CAMERA_DISTANCE = 7.0
CAMERA_LENS_MM = 85.0
CAMERA_Z = -0.05
# Seconds spent inside Blender's render call, for benchmarks (time outside = overhead).
RENDER_CALL_SECONDS = [0.0]


def _light(
    scene: bpy.types.Scene, name: str, loc: tuple[float, float, float], energy: float, size: float
) -> bpy.types.Object:
    data = cast(bpy.types.AreaLight, bpy.data.lights.new(name, "AREA"))
    data.energy = energy
    data.size = size
    obj = bpy.data.objects.new(name, data)
    scene.collection.objects.link(obj)
    obj.location = loc
    direction = -np.asarray(loc, dtype=float)  # point at the origin
    obj.rotation_euler = _look_rotation(direction)
    return obj


def _look_rotation(direction: np.ndarray) -> tuple[float, float, float]:
    """Euler angles that point an object's -Z axis along `direction`."""
    from mathutils import Vector

    e = Vector(direction.tolist()).to_track_quat("-Z", "Y").to_euler()
    return (e.x, e.y, e.z)


def setup_render(
    scene: bpy.types.Scene, size: int = 256, samples: int = 16, lens: float = CAMERA_LENS_MM
) -> bpy.types.Object:
    """Add a front camera, a key and a fill light, and fast Cycles CPU settings."""
    cam_data = bpy.data.cameras.new(CAMERA_NAME)
    cam_data.lens = lens
    cam = bpy.data.objects.new(CAMERA_NAME, cam_data)
    scene.collection.objects.link(cam)
    cam.location = (0.0, -CAMERA_DISTANCE, CAMERA_Z)
    cam.rotation_euler = (math.pi / 2, 0.0, 0.0)
    scene.camera = cam
    _light(scene, "AURT_Key", (-2.5, -5.5, 3.0), 650.0, 3.0)
    _light(scene, "AURT_Fill", (3.5, -4.5, 0.5), 350.0, 4.0)
    world = scene.world or bpy.data.worlds.new("AURT_World")
    scene.world = world
    if world.node_tree is None:  # Blender 4.x; 5.0 worlds always have nodes
        world.use_nodes = True
    world.node_tree.nodes["Background"].inputs["Color"].default_value = (0.25, 0.27, 0.3, 1.0)
    world.node_tree.nodes["Background"].inputs["Strength"].default_value = 0.6
    r = scene.render
    r.engine = "CYCLES"  # type: ignore[assignment]  # stub lists EEVEE only
    r.resolution_x = r.resolution_y = size
    r.resolution_percentage = 100
    r.image_settings.file_format = "PNG"
    r.image_settings.color_mode = "RGB"
    scene.view_settings.view_transform = "Standard"
    cy = scene.cycles
    cy.device = "CPU"
    cy.samples = samples
    cy.use_adaptive_sampling = False
    cy.use_denoising = False
    cy.max_bounces = 2
    cy.diffuse_bounces = 1
    cy.glossy_bounces = 1
    cy.transmission_bounces = 0
    cy.volume_bounces = 0
    cy.transparent_max_bounces = 0
    return cam


def render_array(scene: bpy.types.Scene, alpha: bool = False) -> np.ndarray:
    """Render the scene's camera: (H, W, 3) uint8 RGB, or RGBA with `alpha`."""
    fd, path = tempfile.mkstemp(suffix=".png", prefix="aurt_")
    os.close(fd)
    old = scene.render.filepath
    try:
        scene.render.filepath = path
        scene.render.image_settings.color_mode = "RGBA" if alpha else "RGB"
        t0 = time.perf_counter()
        bpy.ops.render.render(write_still=True, scene=scene.name)
        RENDER_CALL_SECONDS[0] += time.perf_counter() - t0
        img = cv2.imread(path, cv2.IMREAD_UNCHANGED)
        if img is None:
            raise RuntimeError(f"Blender wrote no readable image to {path}")
        return cv2.cvtColor(img, cv2.COLOR_BGRA2RGBA if alpha else cv2.COLOR_BGR2RGB)
    finally:
        scene.render.filepath = old
        os.unlink(path)


def project(scene: bpy.types.Scene, points: np.ndarray) -> np.ndarray:
    """Pixel coordinates (x right, y down) of world points in the scene camera."""
    from bpy_extras.object_utils import world_to_camera_view
    from mathutils import Vector

    if scene.camera is None:
        raise RuntimeError(f"scene {scene.name!r} has no camera to project landmarks with")
    camera = scene.camera
    size = np.array([scene.render.resolution_x, scene.render.resolution_y], dtype=float)
    out = []
    for p in points:
        c = world_to_camera_view(scene, camera, Vector(p.tolist()))
        out.append((c.x * size[0], (1.0 - c.y) * size[1]))
    return np.array(out)
