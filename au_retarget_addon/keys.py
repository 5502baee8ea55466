"""Keys on F-curves, for Blender 4.2 (flat actions) to 5.x (slotted actions), and takes:
one action per tracked video on the face rig. A take is the rig's active action until it is
pushed to the NLA as a strip on a track of its own; then takes are laid out, blended and
muted in the NLA editor, and bake and retarget read what the unmuted strips play."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import bpy
import numpy as np
from bpy_extras import anim_utils

from .core.tracks import Tracks, scene_keys
from .core.video import take_name

KEYED_GROUPS = ("pose", "gaze", "au")  # identity and brow style are not animated
TAKE_KEY = "aurt_take"  # custom property on a take's action: the video it came from
SOURCE_KEY = "aurt_source_take"  # on a baked action: the take it was baked from
NLA_SOURCE_KEY = "aurt_source_nla"  # on a baked action: baked from the rig's NLA strips


class KeyingError(RuntimeError):
    """Keys cannot be written (names the object, channel or take)."""


def channels(id_data: bpy.types.ID, action: bpy.types.Action) -> Any:
    """The F-curve collection through which `action` animates `id_data`, creating the
    slot and channelbag when Blender has them (4.4+; required from 5.0)."""
    ad = id_data.animation_data or id_data.animation_data_create()
    if ad.action != action:
        ad.action = action
    if not hasattr(anim_utils, "action_ensure_channelbag_for_slot"):
        return action.fcurves  # 4.2 and 4.3: flat actions
    slot = ad.action_slot
    if slot is None:
        slot = action.slots.new(id_type=id_data.id_type, name=id_data.name)
        ad.action_slot = slot
    return anim_utils.action_ensure_channelbag_for_slot(action, slot).fcurves


def read_fcurves(action: bpy.types.Action, id_type: str = "OBJECT") -> Any:
    """The F-curves of `action` for its first slot of `id_type`, read without assigning
    the action to anything (an empty list when it animates no such ID)."""
    if not hasattr(anim_utils, "action_get_channelbag_for_slot"):
        return action.fcurves  # 4.2 and 4.3: flat actions
    for slot in action.slots:
        if slot.target_id_type == id_type:
            bag = anim_utils.action_get_channelbag_for_slot(action, slot)
            return bag.fcurves if bag is not None else []
    return []


def source_take(rig: bpy.types.Object) -> bpy.types.Action:
    """The take the rig's parameter curves live in: its active action, or for a baked
    rig the take that action was baked from (the bake keys bones, not parameters)."""
    action = rig.animation_data.action if rig.animation_data else None
    if action is None:
        raise KeyingError(f"rig {rig.name!r} has no take: track a video first")
    source = action.get(SOURCE_KEY)
    if source is None:
        return action
    take = bpy.data.actions.get(source)
    if take is None:
        raise KeyingError(
            f"action {action.name!r} on rig {rig.name!r} was baked from take {source!r}, "
            "which no longer exists"
        )
    return take


def _fcurve(fcurves: Any, path: str, index: int, group: str) -> bpy.types.FCurve:
    fc = fcurves.find(path, index=index)
    if fc is not None:
        return fc
    try:
        return fcurves.new(path, index=index, group_name=group)  # channelbag (4.4+)
    except TypeError:
        return fcurves.new(path, index=index, action_group=group)  # flat action (4.2)


def set_keys(
    fcurves: Any, path: str, index: int, frames: np.ndarray, values: np.ndarray, group: str
) -> None:
    """Key `values` at `frames` (linear), replacing the curve's keys inside that frame
    range and keeping those outside it."""
    fc = _fcurve(fcurves, path, index, group)
    old = np.empty(2 * len(fc.keyframe_points), np.float32)
    fc.keyframe_points.foreach_get("co", old)
    old = old.reshape(-1, 2)
    lo, hi = float(frames.min()), float(frames.max())
    old = old[(old[:, 0] < lo - 1e-3) | (old[:, 0] > hi + 1e-3)]
    new = np.stack([frames.astype(np.float32), values.astype(np.float32)], axis=1)
    co = np.concatenate([old, new])
    co = co[np.argsort(co[:, 0], kind="stable")]
    fc.keyframe_points.clear()
    fc.keyframe_points.add(len(co))
    fc.keyframe_points.foreach_set("co", co.ravel())
    fc.keyframe_points.foreach_set("interpolation", [1] * len(co))  # LINEAR
    fc.update()


def _take_action(rig: bpy.types.Object, video: Path) -> bpy.types.Action:
    """The action of this video's take on this rig (reused, so a rerun replaces its keys in
    the range), else a new one named after the video (an image sequence: its folder)."""
    for action in bpy.data.actions:
        if action.get(TAKE_KEY) == str(video) and action.get("aurt_rig") == rig.name:
            return action
    action = bpy.data.actions.new(take_name(video))
    action[TAKE_KEY] = str(video)
    action["aurt_rig"] = rig.name
    action.use_fake_user = True  # takes survive when another take is assigned
    return action


def write_take(
    rig: bpy.types.Object,
    tracks: Tracks,
    card: dict[str, Any],
    video: Path,
    scene_start: int,
    scene_fps: float,
) -> tuple[bpy.types.Action, int, int]:
    """Key head pose, gaze and every AU of `tracks` on the rig's custom properties; returns
    the take's action and its first and last scene frame."""
    offsets, rows = scene_keys(tracks, scene_fps)
    if len(rows) == 0:
        raise KeyingError(f"no frame of {video} has a face: nothing to key on {rig.name!r}")
    names = [n for g in KEYED_GROUPS for n in card.get("groups", {}).get(g, [])]
    missing = [n for n in names if n not in rig]
    if missing:
        raise KeyingError(f"rig {rig.name!r} lacks the parameter(s) {missing[:5]}")
    col = {n: i for i, n in enumerate(tracks.names)}
    ranges = card.get("ranges", {})
    frames = (scene_start + offsets).astype(np.float64)
    action = _take_action(rig, video)
    fcurves = channels(rig, action)
    for g in KEYED_GROUPS:
        for name in card.get("groups", {}).get(g, []):
            lo, hi = ranges.get(name, (-np.inf, np.inf))
            values = np.clip(tracks.values[rows, col[name]], lo, hi)
            set_keys(
                fcurves, f'["{name}"]', 0, frames, values, g.upper() if g == "au" else g.title()
            )
    return action, int(frames.min()), int(frames.max())


def push_take_to_nla(rig: bpy.types.Object) -> bpy.types.NlaStrip:
    """Move the rig's active take into a new NLA track named after it, as a strip that plays
    its keys at the frames they were keyed on; the rig then has no active action."""
    ad = rig.animation_data
    take = ad.action if ad else None
    if take is None:
        raise KeyingError(f"rig {rig.name!r} has no active take to push: track a video first")
    if take.get(SOURCE_KEY) is not None or take.get(NLA_SOURCE_KEY) or rig.get("aurt_baked"):
        raise KeyingError(f"rig {rig.name!r} is baked: its action {take.name!r} is not a take")
    slot = getattr(ad, "action_slot", None)
    first = len(ad.nla_tracks) == 0
    track = ad.nla_tracks.new()
    track.name = take.name
    strip = track.strips.new(take.name, int(round(take.frame_range[0])), take)
    # Blender's default, HOLD, would also hold this take's first frame over every frame
    # before it, hiding the takes on the tracks below; only the lowest take holds backwards.
    strip.extrapolation = "HOLD" if first else "HOLD_FORWARD"
    if slot is not None and hasattr(strip, "action_slot"):
        strip.action_slot = slot
    ad.action = None
    return strip


def playing_strips(rig: bpy.types.Object) -> list[bpy.types.NlaStrip]:
    """The rig's NLA strips that play: on unmuted tracks, not muted, with the NLA on."""
    ad = rig.animation_data
    if ad is None or not ad.use_nla:
        return []
    return [s for t in ad.nla_tracks if not t.mute for s in t.strips if not s.mute]


def nla_frame_range(rig: bpy.types.Object) -> tuple[int, int]:
    """First and last scene frame of the strips that play."""
    strips = playing_strips(rig)
    if not strips:
        raise KeyingError(f"rig {rig.name!r} has no take: no active action and no NLA strip plays")
    return (
        int(np.floor(min(s.frame_start for s in strips))),
        int(np.ceil(max(s.frame_end for s in strips))),
    )


def reads_nla(rig: bpy.types.Object) -> bool:
    """Whether the rig's parameters come from its NLA strips: no active action, or an
    action baked from them."""
    action = rig.animation_data.action if rig.animation_data else None
    return action is None or bool(action.get(NLA_SOURCE_KEY))


def take_label(rig: bpy.types.Object) -> str:
    """The name of what the rig plays: its take (a baked rig: the take it was baked from),
    or `<rig>_NLA` for the mix of its NLA strips."""
    return f"{rig.name}_NLA" if reads_nla(rig) else source_take(rig).name


def _nla_values(rig: bpy.types.Object, names: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Every scene frame the NLA strips cover and the parameters' values there, as the
    animation system evaluates the strips (blend modes, influence and mutes included)."""
    first, last = nla_frame_range(rig)
    scene = bpy.context.scene
    current = scene.frame_current
    frames = np.arange(first, last + 1, dtype=np.float64)
    values = np.zeros((len(frames), len(names)))
    try:
        for i, f in enumerate(frames):
            scene.frame_set(int(f))
            values[i] = [float(rig[n]) if n in rig else 0.0 for n in names]
    finally:
        scene.frame_set(current)
    return frames, values


def keyed_values(rig: bpy.types.Object, names: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Frames keyed on the rig's parameter curves and each parameter's value there
    (the take, as the animator may have edited it; for a baked rig, the take it was baked
    from; with no active take, every frame of what the NLA strips play)."""
    if reads_nla(rig):
        return _nla_values(rig, names)
    action = source_take(rig)
    fcurves = read_fcurves(action)
    curves = {n: next((fc for fc in fcurves if fc.data_path == f'["{n}"]'), None) for n in names}
    frames = sorted({kp.co[0] for fc in curves.values() if fc for kp in fc.keyframe_points})
    if not frames:
        raise KeyingError(f"action {action.name!r} on rig {rig.name!r} has no parameter keys")
    defaults = [float(rig[n]) if n in rig else 0.0 for n in names]
    values = np.array(
        [
            [
                curves[n].evaluate(f) if curves[n] else d
                for n, d in zip(names, defaults, strict=True)
            ]
            for f in frames
        ]
    )
    return np.array(frames), values
