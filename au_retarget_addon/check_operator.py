"""The "Write Check Image" operator: for the panel's Check Frame (a video frame of the
rig's take) a PNG of the frame with the detected face box and 5 points, the aligned crop
the regressor reads, and a render of the face rig at the scene frame that video frame was
keyed on; the PNG is loaded as an image for the Image Editor.

The video frame's scene frame is Scene Start + round(t x scene fps), t being the frame's
time after the First Frame (the mapping tracking keys with), so it assumes the take was
tracked with the panel's current First Frame and Scene Start; a frame that lands outside
the take's keys is refused. The rig is rendered in a temporary scene holding only the rig
and its meshes, so the user's scene keeps its render settings, camera, world and objects;
everything the render adds is removed afterwards. The rig's pose comes from the user's
scene, which is set to the keyed frame for the render and put back to its frame after.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any, Literal

import bpy
import numpy as np

from . import preferences
from .core.bundle import read_card
from .core.check_image import (
    PANEL_HEIGHT,
    crop_scale,
    face_check,
    read_check_frame,
    write_check_image,
)
from .core.detect import DetectorConfig, FaceDetector
from .core.files import check_output
from .core.video import take_name
from .keys import TAKE_KEY, source_take
from .resources import DETECTOR_DIR, rigs_module
from .track_operator import bundle_path, target_rig

ERRORS = (RuntimeError, ValueError, OSError)  # every core error type derives from these
_ADDED_KINDS = ("objects", "cameras", "lights", "worlds")  # what setup_render may add
_EMISSION = ("Emission Color", "Emission Strength")  # what setup_render's ambient changes
_Result = set[Literal["RUNNING_MODAL", "CANCELLED", "FINISHED", "PASS_THROUGH", "INTERFACE"]]


def scene_frame(scene: Any, seconds: float) -> int:
    """The scene frame a video frame `seconds` after the First Frame was keyed on."""
    fps = scene.render.fps / scene.render.fps_base
    return int(scene.aurt.scene_start + round(seconds * fps))


def output_path(filepath: str, take: str, frame: int) -> Path:
    """The PNG to write: `filepath` (a folder: a file named after the take inside it),
    else beside the saved .blend, else in the temporary folder."""
    name = f"{bpy.path.clean_name(take)}_check_{frame:04d}.png"
    if filepath:
        path = Path(bpy.path.abspath(filepath))
        return path / name if path.is_dir() or filepath.endswith(("/", "\\")) else path
    folder = Path(bpy.data.filepath).parent if bpy.data.filepath else Path(tempfile.gettempdir())
    return folder / name


def _materials(objects: list[bpy.types.Object]) -> list[Any]:
    """The Principled BSDF nodes of the objects' materials (each once)."""
    nodes: dict[int, Any] = {}
    for obj in objects:
        for slot in getattr(obj, "material_slots", []):
            mat = slot.material
            if mat is not None and mat.node_tree is not None:
                bsdf = mat.node_tree.nodes.get("Principled BSDF")
                if bsdf is not None:
                    nodes[bsdf.as_pointer()] = bsdf
    return list(nodes.values())


def _copy(value: Any) -> Any:
    """A socket value detached from Blender: a float, or a colour as a tuple."""
    return value if isinstance(value, float | int) else tuple(value)


def render_rig(scene: bpy.types.Scene, rig: bpy.types.Object, frame: int, size: int) -> np.ndarray:
    """The rig (and its child meshes) rendered at `frame` of `scene`, `size` px square,
    from the front camera of rigs/render_setup placed relative to the rig; RGB uint8.

    The render copies the objects as `scene` evaluated them, so `scene` is set to `frame`
    for the render and put back to its own frame afterwards."""
    render_setup = rigs_module("render_setup")
    before = {kind: set(getattr(bpy.data, kind)) for kind in _ADDED_KINDS}
    objects = [rig, *rig.children_recursive]
    saved = [
        (b, n, _copy(b.inputs[n].default_value)) for b in _materials(objects) for n in _EMISSION
    ]
    old_frame = (scene.frame_current, scene.frame_subframe)
    tmp = bpy.data.scenes.new("AURT_Check")
    try:
        for obj in objects:
            tmp.collection.objects.link(obj)
        tmp.render.fps, tmp.render.fps_base = scene.render.fps, scene.render.fps_base
        tmp.frame_start = tmp.frame_end = tmp.frame_current = frame
        scene.frame_set(frame)
        render_setup.setup_render(tmp, size=size, samples=4)
        for obj in set(bpy.data.objects) - before["objects"]:  # camera and light
            obj.matrix_world = rig.matrix_world @ obj.matrix_basis
        return np.asarray(render_setup.render_array(tmp))
    finally:
        for bsdf, name, value in saved:
            bsdf.inputs[name].default_value = value
        bpy.data.scenes.remove(tmp)
        scene.frame_set(old_frame[0], subframe=old_frame[1])
        for kind in _ADDED_KINDS:  # objects first, then the data they used
            data = getattr(bpy.data, kind)
            for block in set(data) - before[kind]:
                data.remove(block)


def write_check(
    context: bpy.types.Context, filepath: str = "", height: int = PANEL_HEIGHT
) -> tuple[Path, str]:
    """Make and write the check image of the panel's Check Frame, its panels about
    `height` px tall; returns its path and a summary. Raises one of ERRORS naming the rig,
    take, video, frame or file."""
    scene: Any = context.scene
    s = scene.aurt
    rig = target_rig(context)
    take = source_take(rig)
    video = take.get(TAKE_KEY)
    if not video:
        raise ValueError(
            f"action {take.name!r} on rig {rig.name!r} is not a tracked take (it names no video)"
        )
    video = Path(bpy.path.abspath(str(video)))
    size = int(read_card(bundle_path(context))["input"]["size"])
    prefs = preferences.get(context)
    detector = FaceDetector(DETECTOR_DIR, DetectorConfig(threads=prefs.threads))
    fps = scene.render.fps / scene.render.fps_base
    frame = read_check_frame(video, s.check_frame, detector, size, s.video_start, fps)
    at = scene_frame(scene, frame.time)
    first, last = round(take.frame_range[0]), round(take.frame_range[1])
    if not first <= at <= last:
        raise ValueError(
            f"video frame {frame.index} of {video.name} lands on scene frame {at}, outside "
            f"take {take.name!r} (scene frames {first}-{last}): set First Frame and Scene "
            "Start as they were when the take was tracked"
        )
    path = check_output(output_path(filepath, take_name(video), frame.index), (".png",))
    rig_rgb = render_rig(scene, rig, at, size * crop_scale(size, height))
    labels = [
        f"{video.name} frame {frame.index} (face {frame.detection.score:.2f})",
        f"aligned crop {size} px",
        f"{rig.name} at scene frame {at}",
    ]
    image = face_check(frame.image, frame.detection, frame.crop, rig_rgb, labels, height)
    write_check_image(path, image)
    return path, f"video frame {frame.index} of {video.name}, scene frame {at}"


def load_image(context: bpy.types.Context, path: Path) -> bpy.types.Image:
    """The PNG as an image datablock (reloaded when already loaded), shown in any open
    Image Editor that shows no image."""
    image = bpy.data.images.load(str(path), check_existing=True)
    image.reload()
    screen = getattr(context, "screen", None)
    for area in screen.areas if screen is not None else []:
        if area.type == "IMAGE_EDITOR" and area.spaces.active.image is None:
            area.spaces.active.image = image
    return image


class AURT_OT_check_image(bpy.types.Operator):
    """Write a PNG of the Check Frame: the video frame with the detected face, the aligned
    crop the model reads and the face rig rendered at the scene frame it was keyed on"""

    bl_idname = "aurt.check_image"
    bl_label = "Write Check Image"
    bl_options = {"REGISTER"}

    filepath: bpy.props.StringProperty(
        name="File",
        description="PNG to write, or a folder for it; empty: beside the saved .blend file "
        "(the temporary folder while the file is unsaved)",
        subtype="FILE_PATH",
        default="",
    )
    height: bpy.props.IntProperty(
        name="Panel Height",
        description="About how tall the panels are, in pixels (the crop is enlarged by a "
        "whole factor, so its pixels stay exact)",
        default=PANEL_HEIGHT,
        min=32,
        max=2048,
    )

    def execute(self, context: bpy.types.Context) -> _Result:
        try:
            path, summary = write_check(context, self.filepath, self.height)
        except ERRORS as exc:
            self.report({"ERROR"}, f"{exc}; no check image written")
            return {"CANCELLED"}
        image = load_image(context, path)
        self.report({"INFO"}, f"Wrote check image {path} ({summary}); image {image.name!r}")
        return {"FINISHED"}


def register() -> None:
    bpy.utils.register_class(AURT_OT_check_image)


def unregister() -> None:
    bpy.utils.unregister_class(AURT_OT_check_image)
