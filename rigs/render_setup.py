"""Camera, lights and Cycles settings for rendering the face rig (runs inside Blender).

Used by the contact sheets and the training-pair renderer. The rig builder itself
never adds cameras or lights to a user's scene.
"""

from __future__ import annotations

import contextlib
import math
import os
import sys
import tempfile
import time
from collections.abc import Iterator
from typing import cast

import bpy
import cv2
import numpy as np

CAMERA_NAME = "AURT_Camera"
CAMERA_DISTANCE = 7.0
CAMERA_LENS_MM = 85.0
CAMERA_Z = -0.05
KEY_STRENGTH = 3.5  # sun lamp, W/m^2
AMBIENT = 0.35  # materials emit this fraction of their base colour (fill light)
BACKGROUND_RGB = (0.25, 0.27, 0.3)
# Seconds spent inside Blender's render call, for benchmarks (time outside = overhead).
RENDER_CALL_SECONDS = [0.0]


def _light(
    scene: bpy.types.Scene,
    name: str,
    loc: tuple[float, float, float],
    strength: float,
    angle_deg: float,
) -> bpy.types.Object:
    """A sun lamp shining from `loc` toward the origin: soft edges, little sampling noise."""
    data = cast(bpy.types.SunLight, bpy.data.lights.new(name, "SUN"))
    data.energy = strength
    data.angle = math.radians(angle_deg)
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


def set_ambient(material: bpy.types.Material, strength: float = AMBIENT) -> None:
    """Emission = base colour x strength: shadow-free fill light that costs no samples."""
    bsdf = material.node_tree.nodes.get("Principled BSDF")
    if bsdf is None:
        return
    bsdf.inputs["Emission Color"].default_value = bsdf.inputs["Base Color"].default_value
    bsdf.inputs["Emission Strength"].default_value = strength


def add_ambient(scene: bpy.types.Scene, strength: float = AMBIENT) -> None:
    for obj in scene.objects:
        for slot in getattr(obj, "material_slots", []):
            if slot.material is not None:
                set_ambient(slot.material, strength)


def _camera_only_world(scene: bpy.types.Scene) -> None:
    """A grey background seen by the camera that lights nothing (no sampling noise)."""
    world = scene.world or bpy.data.worlds.new("AURT_World")
    scene.world = world
    if world.node_tree is None:  # Blender 4.x; 5.0 worlds always have nodes
        world.use_nodes = True
    nt = world.node_tree
    bg = nt.nodes["Background"]
    bg.inputs["Color"].default_value = (*BACKGROUND_RGB, 1.0)
    bg.inputs["Strength"].default_value = 1.0
    dark = nt.nodes.new("ShaderNodeBackground")
    dark.inputs["Strength"].default_value = 0.0
    path = nt.nodes.new("ShaderNodeLightPath")
    mix = nt.nodes.new("ShaderNodeMixShader")
    nt.links.new(path.outputs["Is Camera Ray"], mix.inputs["Fac"])
    nt.links.new(dark.outputs[0], mix.inputs[1])
    nt.links.new(bg.outputs[0], mix.inputs[2])
    nt.links.new(mix.outputs[0], nt.nodes["World Output"].inputs["Surface"])


def setup_render(
    scene: bpy.types.Scene, size: int = 256, samples: int = 16, lens: float = CAMERA_LENS_MM
) -> bpy.types.Object:
    """Add a front camera, one key light, ambient light and fast Cycles CPU settings.

    One light plus ambient light emitted by the materials themselves means Cycles never
    chooses between light sources per sample: 1 to 4 samples give a clean image.
    """
    cam_data = bpy.data.cameras.new(CAMERA_NAME)
    cam_data.lens = lens
    cam = bpy.data.objects.new(CAMERA_NAME, cam_data)
    scene.collection.objects.link(cam)
    cam.location = (0.0, -CAMERA_DISTANCE, CAMERA_Z)
    cam.rotation_euler = (math.pi / 2, 0.0, 0.0)
    scene.camera = cam
    _light(scene, "AURT_Key", (-2.5, -5.5, 3.0), KEY_STRENGTH, 12.0)
    add_ambient(scene)
    _camera_only_world(scene)
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
    cy.use_light_tree = False  # two area lights and the world: the tree costs 30% here
    cy.max_bounces = 0  # direct light only (the world still lights the face softly)
    cy.diffuse_bounces = 0
    cy.glossy_bounces = 0
    cy.transmission_bounces = 0
    cy.volume_bounces = 0
    cy.transparent_max_bounces = 0
    return cam


@contextlib.contextmanager
def _quiet_stdout() -> Iterator[None]:
    """Silence Blender's per-render "Fra: ... Saved" lines (written by C to fd 1), so
    progress bars stay readable; errors still go to stderr."""
    sys.stdout.flush()
    saved = os.dup(1)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 1)
        yield
    finally:
        os.dup2(saved, 1)
        os.close(saved)
        os.close(devnull)


def render_array(scene: bpy.types.Scene, alpha: bool = False) -> np.ndarray:
    """Render the scene's camera: (H, W, 3) uint8 RGB, or RGBA with `alpha`."""
    fd, path = tempfile.mkstemp(suffix=".png", prefix="aurt_")
    os.close(fd)
    old = scene.render.filepath
    try:
        scene.render.filepath = path
        scene.render.image_settings.color_mode = "RGBA" if alpha else "RGB"
        t0 = time.perf_counter()
        with _quiet_stdout():
            bpy.ops.render.render(write_still=True, scene=scene.name)
        RENDER_CALL_SECONDS[0] += time.perf_counter() - t0
        img = cv2.imread(path, cv2.IMREAD_UNCHANGED)
        if img is None:
            raise RuntimeError(f"Blender wrote no readable image to {path}")
        return cv2.cvtColor(img, cv2.COLOR_BGRA2RGBA if alpha else cv2.COLOR_BGR2RGB)
    finally:
        scene.render.filepath = old
        os.unlink(path)


def camera_matrix(scene: bpy.types.Scene) -> np.ndarray:
    """4x4 matrix from world points to clip space of the scene camera at render size."""
    if scene.camera is None:
        raise RuntimeError(f"scene {scene.name!r} has no camera to project points with")
    cam = scene.camera
    depsgraph = bpy.context.evaluated_depsgraph_get()
    r = scene.render
    proj = cam.calc_matrix_camera(depsgraph, x=r.resolution_x, y=r.resolution_y)
    return np.array(proj) @ np.array(cam.matrix_world.inverted())


def project_depth(scene: bpy.types.Scene, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pixel coordinates and view depth of (N, 3) world points.

    Coordinates follow OpenCV: x right, y down, pixel centres at integers, so they can be
    used with cv2.warpAffine on the rendered image directly.
    """
    m = camera_matrix(scene)
    h = np.c_[points, np.ones(len(points))] @ m.T
    w = h[:, 3]
    size = np.array([scene.render.resolution_x, scene.render.resolution_y], dtype=float)
    x = (h[:, 0] / w + 1.0) * 0.5 * size[0] - 0.5
    y = (1.0 - (h[:, 1] / w + 1.0) * 0.5) * size[1] - 0.5
    return np.stack([x, y], axis=1), w


def project(scene: bpy.types.Scene, points: np.ndarray) -> np.ndarray:
    """Pixel coordinates (OpenCV convention) of (N, 3) world points in the scene camera."""
    return project_depth(scene, points)[0]
