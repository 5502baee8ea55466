"""Per-scene settings of the AU Retarget panel (`scene.aurt`)."""

from __future__ import annotations

import bpy
from bpy.props import (
    BoolProperty,
    EnumProperty,
    FloatProperty,
    IntProperty,
    PointerProperty,
    StringProperty,
)

from .preferences import DEVICES

RIG_KEY = "aurt_spec_hash"  # custom property every face rig carries


def is_face_rig(obj: bpy.types.Object | None) -> bool:
    return obj is not None and obj.type == "ARMATURE" and RIG_KEY in obj


def _poll_rig(_self: object, obj: bpy.types.Object) -> bool:
    return is_face_rig(obj)


def _poll_retarget(_self: object, obj: bpy.types.Object) -> bool:
    return obj.type == "ARMATURE" or (obj.type == "MESH" and obj.data.shape_keys is not None)


def _use_mapping_file(self: AURT_Settings, _context: bpy.types.Context) -> None:
    """Choosing a mapping file selects it as the mapping."""
    if self.mapping_path and self.mapping_preset != "FILE":
        self.mapping_preset = "FILE"


class AURT_Settings(bpy.types.PropertyGroup):
    target: PointerProperty(
        name="Rig", type=bpy.types.Object, poll=_poll_rig, description="Face rig to key"
    )
    video: StringProperty(
        name="Video",
        description="Video file of the face to track (any format OpenCV reads: MP4, MOV, AVI, "
        "...), or an image sequence: a folder of frames, a pattern such as frame_%04d.png, or "
        "one numbered image of the sequence. Images are timed at the scene's frame rate",
        subtype="FILE_PATH",
        default="",
    )
    video_start: IntProperty(
        name="First Frame", description="First video frame to track (0-based)", default=0, min=0
    )
    video_end: IntProperty(
        name="Last Frame",
        description="Last video frame to track; -1: to the end of the video",
        default=-1,
        min=-1,
    )
    video_step: IntProperty(
        name="Step", description="Track every Nth video frame", default=1, min=1
    )
    scene_start: IntProperty(
        name="Scene Start",
        description="Scene frame that receives the first tracked video frame",
        default=1,
    )
    set_scene_fps: BoolProperty(
        name="Set Scene Frame Rate",
        description="Set the scene's frame rate to the video's when keying, so that every "
        "video frame gets a scene frame of its own; off: the video's frames are placed by "
        "their time at the scene's rate",
        default=False,
    )
    smoothing: BoolProperty(
        name="Smoothing",
        description="Filter the tracks over time (One Euro filter) to remove jitter",
        default=True,
    )
    min_cutoff: FloatProperty(
        name="Min Cutoff",
        description="One Euro filter: cutoff (Hz) at rest; lower is smoother but lags more",
        default=1.0,
        min=0.01,
        soft_max=10.0,
    )
    beta: FloatProperty(
        name="Speed Coefficient",
        description="One Euro filter: how fast the cutoff rises with speed; higher lags less",
        default=0.05,
        min=0.0,
        soft_max=1.0,
    )
    missing: EnumProperty(
        name="No Face",
        description="What frames without a readable face get",
        items=[
            ("none", "No Keys", "Frames without a face get no keys"),
            ("hold", "Hold", "Hold the last tracked value"),
            ("interpolate", "Interpolate", "Interpolate linearly across the gap"),
        ],
        default="none",
    )
    crops: EnumProperty(
        name="Face Crops",
        description="How each frame's face crop is found",
        items=[
            (
                "landmarks",
                "From Landmarks",
                "Align each frame by the previous frame's face landmarks, as MediaPipe "
                "tracks; the face detector runs only to start and when the face is lost "
                "(models without landmarks use the detector)",
            ),
            (
                "detector",
                "Detector Every Frame",
                "Run the face detector on every frame and read the crops in batches",
            ),
        ],
        default="landmarks",
    )
    neutral: EnumProperty(
        name="Neutral",
        description="Calibrate the AUs against a neutral face, so that face keys at 0",
        items=[
            ("NONE", "None", "Key the AU values as tracked"),
            ("AUTO", "Most Neutral Frame", "Subtract the AUs of the least expressive frame"),
            ("FRAME", "Frame", "Subtract the AUs of a chosen video frame"),
        ],
        default="NONE",
    )
    neutral_frame: IntProperty(
        name="Neutral Frame",
        description="Video frame (0-based, one of the tracked frames) showing a neutral face",
        default=0,
        min=0,
    )
    model: EnumProperty(
        name="Model",
        description="Which regressor reads the face",
        items=[
            ("DEFAULT", "Default", "The add-on preferences' model, else the bundled one"),
            ("FILE", "Bundle Folder", "A model bundle folder (model.onnx + model_card.json)"),
        ],
        default="DEFAULT",
    )
    model_path: StringProperty(
        name="Bundle",
        description="Model bundle folder holding model.onnx and model_card.json",
        subtype="DIR_PATH",
        default="",
    )
    device: EnumProperty(
        name="Provider",
        description="Where onnxruntime runs the networks: CPU, or CUDA on an NVIDIA GPU",
        items=[("PREFS", "Preferences", "As set in the add-on preferences"), *DEVICES],
        default="PREFS",
    )
    retarget_target: PointerProperty(
        name="Character",
        type=bpy.types.Object,
        poll=_poll_retarget,
        description="Mesh with shape keys, or armature, to receive the take",
    )
    mapping_path: StringProperty(
        name="Mapping File",
        subtype="FILE_PATH",
        description="Mapping file (TOML) to retarget through; choosing one sets Mapping to File",
        default="",
        update=_use_mapping_file,
    )
    mapping_preset: EnumProperty(
        name="Mapping",
        description="How the take's parameters drive the character: a shipped mapping or a file",
        items=[
            ("ARKIT", "ARKit Blendshapes", "The 52 ARKit blendshapes: shape keys of a mesh"),
            (
                "RIGIFY",
                "Rigify Face",
                "Face, jaw, eye and head controls of a rig Rigify generated from its Human metarig",
            ),
            ("FILE", "File", "A mapping file (TOML) of your own"),
        ],
        default="ARKIT",
    )
    flip_yaw: BoolProperty(
        name="Flip Yaw",
        description="Negate head yaw (turning left and right) before retargeting, for a "
        "character or a mirrored video whose head turns to the wrong side",
        default=False,
    )
    flip_pitch: BoolProperty(
        name="Flip Pitch",
        description="Negate head pitch (nodding up and down) before retargeting, for a "
        "character whose head nods the wrong way",
        default=False,
    )
    flip_roll: BoolProperty(
        name="Flip Roll",
        description="Negate head roll (tilting toward a shoulder) before retargeting, for a "
        "character or a mirrored video whose head tilts to the wrong side",
        default=False,
    )
    check_frame: IntProperty(
        name="Check Frame",
        description="Video frame (0-based) of the rig's take to write a check image of: the "
        "frame with the detected face, the aligned crop the model reads and the rig at the "
        "scene frame that video frame was keyed on",
        default=0,
        min=0,
    )


def register() -> None:
    bpy.utils.register_class(AURT_Settings)
    bpy.types.Scene.aurt = PointerProperty(type=AURT_Settings)


def unregister() -> None:
    del bpy.types.Scene.aurt
    bpy.utils.unregister_class(AURT_Settings)
