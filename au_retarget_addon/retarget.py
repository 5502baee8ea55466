"""Retarget a take to another character's shape keys or bones through a mapping file
(paper Figure 5: the same head pose and AU parameters drive other characters)."""

from __future__ import annotations

import math

import bpy

from .core.mapping import Mapping
from .keys import channels, keyed_values, set_keys, source_take


class RetargetError(RuntimeError):
    """The character does not fit the mapping (names the object, shape key or bone)."""


def _shape_key_paths(obj: bpy.types.Object, mapping: Mapping) -> tuple[bpy.types.ID, list]:
    if obj.type != "MESH" or obj.data.shape_keys is None:
        raise RetargetError(f"{obj.name!r} has no shape keys; mapping {mapping.name!r} needs them")
    key = obj.data.shape_keys
    paths = [
        (j, f'key_blocks["{t.name}"].value', 0, 1.0)
        for j, t in enumerate(mapping.targets)
        if t.name in key.key_blocks
    ]
    return key, paths


def _bone_paths(obj: bpy.types.Object, mapping: Mapping) -> tuple[bpy.types.ID, list]:
    if obj.type != "ARMATURE":
        raise RetargetError(f"{obj.name!r} is not an armature; mapping {mapping.name!r} keys bones")
    paths = []
    for j, t in enumerate(mapping.targets):
        pb = obj.pose.bones.get(t.name)
        if pb is None:
            continue
        if t.channel == "rotation_euler" and pb.rotation_mode in ("QUATERNION", "AXIS_ANGLE"):
            raise RetargetError(
                f"bone {t.name!r} of {obj.name!r} uses {pb.rotation_mode} rotation; "
                "mapping targets rotation_euler: set the bone to an Euler mode"
            )
        scale = math.radians(1.0) if t.channel == "rotation_euler" else 1.0
        paths.append((j, f'pose.bones["{t.name}"].{t.channel}', t.index, scale))
    return obj, paths


def retarget_take(
    rig: bpy.types.Object, character: bpy.types.Object, mapping: Mapping
) -> tuple[bpy.types.Action, list[str]]:
    """Key the character from the rig's take; returns the new action and the mapping
    targets the character lacks (keyed nowhere)."""
    names = sorted({p for t in mapping.targets for p in t.source})
    frames, values = keyed_values(rig, names)
    id_data, paths = (_shape_key_paths if mapping.kind == "shape_keys" else _bone_paths)(
        character, mapping
    )
    if not paths:
        raise RetargetError(
            f"{character.name!r} has none of the {len(mapping.targets)} targets of "
            f"mapping {mapping.name!r}"
        )
    out = mapping.evaluate(names, values)
    take = source_take(rig)
    action = bpy.data.actions.new(f"{take.name}_{character.name}")
    action.use_fake_user = True
    fcurves = channels(id_data, action)
    for j, path, index, scale in paths:
        set_keys(fcurves, path, index, frames, out[:, j] * scale, mapping.name)
    found = {j for j, *_ in paths}
    lacking = [t.name for j, t in enumerate(mapping.targets) if j not in found]
    return action, lacking
