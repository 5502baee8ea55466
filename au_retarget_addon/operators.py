"""Operators besides tracking: add the face rig, push a take to the NLA, bake a take,
retarget a take. Each is thin: check the inputs, call one function, report errors with
what they name."""

from __future__ import annotations

import bpy

from .bake import bake_take
from .core.mapping import MappingError, load_mapping
from .keys import KeyingError, push_take_to_nla
from .resources import ARKIT_MAPPING, RIGIFY_MAPPING, rigs_module
from .retarget import POSE_INPUTS, RetargetError, retarget_take
from .track_operator import target_rig


class AURT_OT_add_face_rig(bpy.types.Operator):
    """Add the AU Retarget face rig (armature and mesh) to the scene"""

    bl_idname = "aurt.add_face_rig"
    bl_label = "Add Face Rig"
    bl_options = {"REGISTER", "UNDO"}

    def execute(self, context: bpy.types.Context) -> set[str]:
        builder = rigs_module("builder")
        if context.mode != "OBJECT":
            bpy.ops.object.mode_set(mode="OBJECT")
        rig = builder.build_face_rig(context)
        for obj in context.view_layer.objects:
            obj.select_set(False)
        rig.select_set(True)
        context.view_layer.objects.active = rig
        context.scene.aurt.target = rig
        self.report({"INFO"}, f"Added face rig {rig.name!r}")
        return {"FINISHED"}


class AURT_OT_push_take_to_nla(bpy.types.Operator):
    """Move the rig's take into an NLA track of its own, so several takes can be laid out,
    blended and muted in the NLA editor; bake and retarget then use what the strips play"""

    bl_idname = "aurt.push_take_to_nla"
    bl_label = "Take to NLA Strip"
    bl_options = {"REGISTER", "UNDO"}

    def execute(self, context: bpy.types.Context) -> set[str]:
        try:
            rig = target_rig(context)
            strip = push_take_to_nla(rig)
        except (KeyingError, ValueError) as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        first, last = int(strip.frame_start), int(strip.frame_end)
        self.report({"INFO"}, f"Take {strip.name!r} is an NLA strip on {rig.name}, {first}-{last}")
        return {"FINISHED"}


class AURT_OT_bake_keys(bpy.types.Operator):
    """Bake the rig's take to plain keyframes on its deform bones and remove the bone
    drivers, so the animation exports (glTF, FBX) without custom properties"""

    bl_idname = "aurt.bake_keys"
    bl_label = "Bake Keys"
    bl_options = {"REGISTER", "UNDO"}

    def execute(self, context: bpy.types.Context) -> set[str]:
        try:
            rig = target_rig(context)
            baked = bake_take(context.scene, rig)
        except (KeyingError, ValueError) as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        first, last = (int(f) for f in baked.frame_range)
        self.report({"INFO"}, f"Baked {rig.name} frames {first}-{last} into {baked.name!r}")
        return {"FINISHED"}


SHIPPED_MAPPINGS = {"ARKIT": ARKIT_MAPPING, "RIGIFY": RIGIFY_MAPPING}


class AURT_OT_retarget(bpy.types.Operator):
    """Key another character (shape keys or bones) from the rig's take through a mapping:
    the shipped ARKit 52-blendshape or Rigify face mapping, or a mapping file"""

    bl_idname = "aurt.retarget"
    bl_label = "Retarget Take"
    bl_options = {"REGISTER", "UNDO"}

    def execute(self, context: bpy.types.Context) -> set[str]:
        s = context.scene.aurt
        try:
            rig = target_rig(context)
            if s.retarget_target is None:
                raise ValueError("no character chosen to retarget to")
            if s.mapping_preset == "FILE" and not s.mapping_path:
                raise ValueError("no mapping file chosen: pick one, or a shipped Mapping")
            path = (
                bpy.path.abspath(s.mapping_path)
                if s.mapping_preset == "FILE"
                else SHIPPED_MAPPINGS[s.mapping_preset]
            )
            mapping = load_mapping(path)
            flips = (s.flip_yaw, s.flip_pitch, s.flip_roll)
            flip = [n for n, on in zip(POSE_INPUTS, flips, strict=True) if on]
            action, lacking = retarget_take(rig, s.retarget_target, mapping, flip=flip)
        except (KeyingError, RetargetError, MappingError, ValueError) as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        keyed = len(mapping.targets) - len(lacking)
        msg = f"Retargeted to {s.retarget_target.name}: {keyed} channels in {action.name!r}"
        if lacking:
            self.report({"WARNING"}, f"{msg}; not on the character: {', '.join(lacking[:8])}")
        else:
            self.report({"INFO"}, msg)
        return {"FINISHED"}


CLASSES = (AURT_OT_add_face_rig, AURT_OT_push_take_to_nla, AURT_OT_bake_keys, AURT_OT_retarget)


def register() -> None:
    for cls in CLASSES:
        bpy.utils.register_class(cls)


def unregister() -> None:
    for cls in reversed(CLASSES):
        bpy.utils.unregister_class(cls)
