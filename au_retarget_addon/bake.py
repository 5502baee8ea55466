"""Bake a take to plain keyframes on the deform bones, so the animation exports without
the rig's drivers and custom properties."""

from __future__ import annotations

import dataclasses

import bpy
from bpy_extras import anim_utils

from .keys import NLA_SOURCE_KEY, SOURCE_KEY, KeyingError, nla_frame_range


def _options() -> anim_utils.BakeOptions:
    wanted = {
        "only_selected": False,
        "do_pose": True,
        "do_object": False,
        "do_visual_keying": True,  # evaluate the drivers, key what the bones really do
        "do_constraint_clear": False,
        "do_parents_clear": False,
        "do_clean": False,  # one key per frame: what exporters sample anyway
        "do_location": True,
        "do_rotation": True,
        "do_scale": True,
        "do_bbone": False,
        "do_custom_props": False,
    }
    try:  # a dataclass in Blender 5.x, a NamedTuple in older releases
        known = {f.name for f in dataclasses.fields(anim_utils.BakeOptions)}
    except TypeError:
        known = set(getattr(anim_utils.BakeOptions, "_fields", ()))
    return anim_utils.BakeOptions(**{k: v for k, v in wanted.items() if k in known})


def bake_take(scene: bpy.types.Scene, rig: bpy.types.Object) -> bpy.types.Action:
    """Bake the rig's current take over its frame range into a new action
    (`<take>_baked`), then remove the bone drivers. The take itself is kept, and the baked
    action names it, so a baked rig still retargets from its parameter curves. With no
    active take, what the NLA strips play is baked (`<rig>_NLA_baked`) over their range."""
    if rig.get("aurt_baked"):
        raise KeyingError(f"rig {rig.name!r} is already baked")
    ad = rig.animation_data
    take = ad.action if ad else None
    if take is None:
        try:
            first, last = nla_frame_range(rig)
        except KeyingError:
            raise KeyingError(
                f"rig {rig.name!r} has no take to bake: track a video first"
            ) from None
    else:
        first, last = (int(round(f)) for f in take.frame_range)
    frame = scene.frame_current
    try:
        baked = anim_utils.bake_action(
            rig, action=None, frames=range(first, last + 1), bake_options=_options()
        )
    finally:
        scene.frame_set(frame)
    if baked is None:
        raise KeyingError(f"baking {take.name!r} on {rig.name!r} produced no action")
    if take is None:
        baked.name = f"{rig.name}_NLA_baked"
        baked[NLA_SOURCE_KEY] = True
    else:
        baked.name = f"{take.name}_baked"
        baked[SOURCE_KEY] = take.name
    for fc in list(ad.drivers):
        if fc.data_path.startswith("pose.bones"):
            ad.drivers.remove(fc)
    rig["aurt_baked"] = True
    ad.action = baked
    if take is not None:
        take.use_fake_user = True
    return baked
