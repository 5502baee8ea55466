"""Add-on preferences: default model bundle, execution provider, threads."""

from __future__ import annotations

from dataclasses import dataclass

import bpy
from bpy.props import EnumProperty, IntProperty, StringProperty

DEVICES = [
    ("auto", "Auto", "CUDA when onnxruntime has it, else the CPU"),
    ("cpu", "CPU", "Always the CPU"),
    ("cuda", "CUDA", "NVIDIA GPU through onnxruntime-gpu (an error if it is not available)"),
]


class AURT_AddonPreferences(bpy.types.AddonPreferences):
    bl_idname = __package__

    model_path: StringProperty(
        name="Default Model",
        description="Model bundle folder used when a scene asks for the default; "
        "empty: the bundle shipped with the add-on",
        subtype="DIR_PATH",
        default="",
    )
    device: EnumProperty(
        name="Execution Provider",
        description="Where onnxruntime runs the networks when a scene leaves it to the "
        "preferences: auto (CUDA when present), CPU or CUDA",
        items=DEVICES,
        default="auto",
    )
    threads: IntProperty(
        name="Threads",
        description="CPU threads for detection and inference; 0 lets onnxruntime choose",
        default=0,
        min=0,
        max=256,
    )

    def draw(self, context: bpy.types.Context) -> None:
        col = self.layout.column()
        col.prop(self, "model_path")
        col.prop(self, "device")
        col.prop(self, "threads")


@dataclass
class Defaults:
    """The preferences' defaults, for the add-on registered from source (not enabled as
    an extension), e.g. by the demo script."""

    model_path: str = ""
    device: str = "auto"
    threads: int = 0


def get(context: bpy.types.Context) -> AURT_AddonPreferences | Defaults:
    addon = context.preferences.addons.get(__package__)
    return addon.preferences if addon is not None else Defaults()


def register() -> None:
    bpy.utils.register_class(AURT_AddonPreferences)


def unregister() -> None:
    bpy.utils.unregister_class(AURT_AddonPreferences)
