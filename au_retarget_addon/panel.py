"""The "AU Retarget" tab in the 3D viewport's sidebar (N panel)."""

from __future__ import annotations

import bpy


class VIEW3D_PT_aurt_main(bpy.types.Panel):
    bl_space_type = "VIEW_3D"
    bl_region_type = "UI"
    bl_category = "AU Retarget"
    bl_label = "Track Video"

    def draw(self, context: bpy.types.Context) -> None:
        s, layout = context.scene.aurt, self.layout
        layout.operator("aurt.add_face_rig", icon="ARMATURE_DATA")
        layout.prop(s, "target")
        layout.prop(s, "video")
        row = layout.row(align=True)
        row.prop(s, "video_start")
        row.prop(s, "video_end")
        layout.prop(s, "video_step")
        layout.prop(s, "scene_start")
        layout.prop(s, "set_scene_fps")
        col = layout.column(heading="Smoothing")
        col.prop(s, "smoothing", text="One Euro Filter")
        sub = col.column(align=True)
        sub.active = s.smoothing
        sub.prop(s, "min_cutoff")
        sub.prop(s, "beta")
        layout.prop(s, "missing")
        layout.prop(s, "neutral")
        if s.neutral == "FRAME":
            layout.prop(s, "neutral_frame")
        layout.prop(s, "model")
        if s.model == "FILE":
            layout.prop(s, "model_path")
        layout.prop(s, "device")
        layout.prop(s, "crops")
        layout.operator("aurt.track_video", icon="TRACKING")
        layout.prop(s, "check_frame")
        layout.operator("aurt.check_image", icon="IMAGE_DATA")


class VIEW3D_PT_aurt_output(bpy.types.Panel):
    bl_space_type = "VIEW_3D"
    bl_region_type = "UI"
    bl_category = "AU Retarget"
    bl_label = "Bake and Retarget"

    def draw(self, context: bpy.types.Context) -> None:
        s, layout = context.scene.aurt, self.layout
        layout.operator("aurt.push_take_to_nla", icon="NLA_PUSHDOWN")
        layout.operator("aurt.bake_keys", icon="KEYINGSET")
        layout.separator()
        layout.prop(s, "retarget_target")
        layout.prop(s, "mapping_preset")
        if s.mapping_preset == "FILE":
            layout.prop(s, "mapping_path")
        row = layout.row(heading="Flip Head", align=True)
        row.prop(s, "flip_yaw", text="Yaw", toggle=True)
        row.prop(s, "flip_pitch", text="Pitch", toggle=True)
        row.prop(s, "flip_roll", text="Roll", toggle=True)
        layout.operator("aurt.retarget", icon="MOD_DATA_TRANSFER")
        layout.operator("aurt.export_livelink", icon="EXPORT")
        layout.operator("aurt.import_livelink", icon="IMPORT")


CLASSES = (VIEW3D_PT_aurt_main, VIEW3D_PT_aurt_output)


def register() -> None:
    for cls in CLASSES:
        bpy.utils.register_class(cls)


def unregister() -> None:
    for cls in reversed(CLASSES):
        bpy.utils.unregister_class(cls)
