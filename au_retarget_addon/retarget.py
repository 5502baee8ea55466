"""Retarget a take to another character's shape keys or bones through a mapping file
(paper Figure 5: the same head pose and AU parameters drive other characters).

Head pose axes, as the rig spec defines them (degrees): head_yaw + turns the face toward
its own left (image right), head_pitch + lifts the chin, head_roll + tips the top of the
head toward the face's own right (image left). On a bone whose local axes are X = the
character's left, Y = up, Z = forward out of the face (a bone pointing up with no roll,
as the face rig's head and Rigify's head), the same motion is rotation Y = +yaw,
X = -pitch, Z = +roll, in ZXY Euler order (roll, then pitch, then yaw), which is what
the shipped Rigify mapping keys. `retarget_take(..., flip=...)` negates chosen head-pose
parameters before the mapping reads them, for a character or video whose turns come out
mirrored. Rotations with an Euler `order` in the mapping are keyed in each bone's own
rotation mode (Rigify's controls rotate in quaternions).
"""

from __future__ import annotations

import math
from collections.abc import Collection

import bpy
import numpy as np
from mathutils import Euler, Quaternion

from .core.mapping import Mapping, Target
from .keys import channels, keyed_values, set_keys, take_label


class RetargetError(RuntimeError):
    """The character does not fit the mapping (names the object, shape key or bone)."""


Key = tuple[str, int, np.ndarray]  # F-curve data path, array index, value per frame
POSE_INPUTS = ("head_yaw", "head_pitch", "head_roll")
_ROTATION_CHANNELS = {"QUATERNION": "rotation_quaternion", "AXIS_ANGLE": "rotation_axis_angle"}


def _shape_key_keys(
    obj: bpy.types.Object, mapping: Mapping, out: np.ndarray
) -> tuple[bpy.types.ID, list[Key], set[int]]:
    if obj.type != "MESH" or obj.data.shape_keys is None:
        raise RetargetError(f"{obj.name!r} has no shape keys; mapping {mapping.name!r} needs them")
    key = obj.data.shape_keys
    found = {j for j, t in enumerate(mapping.targets) if t.name in key.key_blocks}
    keys = [(f'key_blocks["{mapping.targets[j].name}"].value', 0, out[:, j]) for j in sorted(found)]
    return key, keys, found


def _rotation_keys(pb: bpy.types.PoseBone, targets: list[Target], degrees: np.ndarray) -> list[Key]:
    """Keys of one rotation given as Euler degrees (columns in `targets` order, their
    axes and Euler order) in the bone's own rotation mode, continuous from frame to frame."""
    order = targets[0].order or "XYZ"
    angles = np.zeros((len(degrees), 3))
    for k, t in enumerate(targets):
        angles[:, t.index] = np.radians(degrees[:, k])
    path, mode = f'pose.bones["{pb.name}"].', pb.rotation_mode
    if mode == order:
        return [(path + "rotation_euler", t.index, angles[:, t.index]) for t in targets]
    size = 3 if mode not in _ROTATION_CHANNELS else 4
    rows = np.full((len(angles), size), np.nan)
    prev_q: Quaternion | None = None
    prev_e: Euler | None = None
    for i, a in enumerate(angles):
        if np.isnan(a).any():
            continue
        rot = Euler(a.tolist(), order)
        if mode in _ROTATION_CHANNELS:
            q = rot.to_quaternion()
            if prev_q is not None and q.dot(prev_q) < 0.0:
                q.negate()  # the nearer of q and -q: no flip between keys
            prev_q = q
            axis, angle = q.to_axis_angle()
            rows[i] = (q.w, q.x, q.y, q.z) if mode == "QUATERNION" else (angle, *axis.to_tuple())
        else:
            m = rot.to_matrix()
            e = m.to_euler(mode) if prev_e is None else m.to_euler(mode, prev_e)
            prev_e = e
            rows[i] = (e.x, e.y, e.z)
    channel = _ROTATION_CHANNELS.get(mode, "rotation_euler")
    return [(path + channel, c, rows[:, c]) for c in range(size)]


def _bone_keys(
    obj: bpy.types.Object, mapping: Mapping, out: np.ndarray
) -> tuple[bpy.types.ID, list[Key], set[int]]:
    if obj.type != "ARMATURE":
        raise RetargetError(f"{obj.name!r} is not an armature; mapping {mapping.name!r} keys bones")
    keys: list[Key] = []
    found: set[int] = set()
    rotations: dict[str, list[int]] = {}  # bone -> its rotation_euler targets with an order
    for j, t in enumerate(mapping.targets):
        pb = obj.pose.bones.get(t.name)
        if pb is None:
            continue
        found.add(j)
        if t.channel == "rotation_euler" and t.order is not None:
            rotations.setdefault(t.name, []).append(j)
            continue
        if t.channel == "rotation_euler" and pb.rotation_mode in _ROTATION_CHANNELS:
            raise RetargetError(
                f"bone {t.name!r} of {obj.name!r} uses {pb.rotation_mode} rotation and mapping "
                f"{mapping.name!r} keys its rotation_euler channels: set the bone to an Euler "
                "mode, or give those targets an Euler 'order' (such as XYZ) to convert"
            )
        scale = math.radians(1.0) if t.channel == "rotation_euler" else 1.0
        keys.append((f'pose.bones["{t.name}"].{t.channel}', t.index, out[:, j] * scale))
    for bone, cols in rotations.items():
        targets = [mapping.targets[j] for j in cols]
        keys += _rotation_keys(obj.pose.bones[bone], targets, out[:, cols])
    return obj, keys, found


def retarget_take(
    rig: bpy.types.Object,
    character: bpy.types.Object,
    mapping: Mapping,
    flip: Collection[str] = (),
) -> tuple[bpy.types.Action, list[str]]:
    """Key the character from the rig's take; returns the new action and the mapping
    targets the character lacks (keyed nowhere). `flip` names head-pose parameters
    (POSE_INPUTS) that are negated before the mapping reads them."""
    unknown = sorted(set(flip) - set(POSE_INPUTS))
    if unknown:
        raise ValueError(f"only head pose parameters {POSE_INPUTS} can be flipped, not {unknown}")
    names = sorted({p for t in mapping.targets for p in t.source})
    frames, values = keyed_values(rig, names)
    for n in flip:
        if n in names:
            values[:, names.index(n)] *= -1.0
    out = mapping.evaluate(names, values)
    id_data, keys, found = (_shape_key_keys if mapping.kind == "shape_keys" else _bone_keys)(
        character, mapping, out
    )
    if not keys:
        raise RetargetError(
            f"{character.name!r} has none of the {len(mapping.targets)} targets of "
            f"mapping {mapping.name!r}"
        )
    action = bpy.data.actions.new(f"{take_label(rig)}_{character.name}")
    action.use_fake_user = True
    fcurves = channels(id_data, action)
    for path, index, vals in keys:
        set_keys(fcurves, path, index, frames, vals, mapping.name)
    lacking = [t.name for j, t in enumerate(mapping.targets) if j not in found]
    return action, lacking
