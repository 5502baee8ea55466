"""Live Link Face CSV export and import (the iPhone app's take files, also read by Faceit
and Unreal): the rig's take -> 52 ARKit blendshapes plus head and eye angles, and such a
file -> a take on the face rig, keyed like a tracked video (see core/livelink.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import bpy
import numpy as np
from bpy.props import IntProperty, StringProperty
from bpy_extras.io_utils import ExportHelper, ImportHelper

from .core.files import check_output
from .core.livelink import (
    RATE,
    from_parameters,
    keyed_names,
    read_livelink,
    to_tracks,
    write_livelink,
)
from .core.mapping import load_mapping
from .keys import KEYED_GROUPS, keyed_values, write_take
from .resources import ARKIT_MAPPING, rigs_module
from .track_operator import target_rig

ERRORS = (ValueError, RuntimeError, OSError)  # LiveLinkError, MappingError, KeyingError, ...


def rig_card() -> dict[str, Any]:
    """The rig spec's keyed parameters and their ranges, in the model card's layout."""
    spec = rigs_module("spec").load_spec()
    return {
        "groups": {g: [p.name for p in spec.group(g)] for g in KEYED_GROUPS},
        "ranges": {p.name: (p.min, p.max) for p in spec.params},
    }


def _scene_fps(context: bpy.types.Context) -> float:
    render = context.scene.render
    return render.fps / render.fps_base


RATE_TIP = (
    "Frames per second the file's timecode (HH:MM:SS:FF.fff) counts; the Live Link Face app "
    "counts 60"
)
FILTER_TIP = "File browser filter: CSV files"


class AURT_OT_export_livelink(bpy.types.Operator, ExportHelper):
    """Write the face rig's take as a Live Link Face CSV file: the 52 ARKit blendshapes
    (through the shipped ARKit mapping) and head and eye angles, one row per keyed frame"""

    bl_idname = "aurt.export_livelink"
    bl_label = "Export Live Link Face CSV"
    bl_options = {"REGISTER"}

    filename_ext = ".csv"
    filter_glob: StringProperty(default="*.csv", options={"HIDDEN"}, description=FILTER_TIP)
    rate: IntProperty(name="Timecode Rate", description=RATE_TIP, default=RATE, min=1, max=1000)

    def invoke(self, context: bpy.types.Context, event: bpy.types.Event) -> set[str]:
        rig = context.scene.aurt.target or context.active_object
        action = rig.animation_data.action if rig and rig.animation_data else None
        if not self.filepath and action is not None:
            folder = Path(bpy.path.abspath("//")) if bpy.data.filepath else Path.home()
            self.filepath = str(folder / f"{bpy.path.clean_name(action.name)}.csv")
        context.window_manager.fileselect_add(self)
        return {"RUNNING_MODAL"}

    def execute(self, context: bpy.types.Context) -> set[str]:
        try:
            path = check_output(Path(bpy.path.abspath(self.filepath)), (".csv",))
            rig = target_rig(context)
            names = keyed_names(rig_card())
            frames, values = keyed_values(rig, names)
            times = (frames - frames[0]) / _scene_fps(context)
            take = from_parameters(names, values, times, load_mapping(ARKIT_MAPPING), self.rate)
            write_livelink(path, take)
        except ERRORS as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        self.report(
            {"INFO"},
            f"Wrote {path.name}: {len(frames)} frames of {rig.animation_data.action.name!r}",
        )
        return {"FINISHED"}


class AURT_OT_import_livelink(bpy.types.Operator, ImportHelper):
    """Key a Live Link Face CSV file (an iPhone capture) as a take on the face rig: head
    pose and gaze from its angles, the AUs that best reproduce its 52 ARKit blendshapes
    through the shipped ARKit mapping. Bake and retarget then work as for a tracked video"""

    bl_idname = "aurt.import_livelink"
    bl_label = "Import Live Link Face CSV"
    bl_options = {"REGISTER", "UNDO"}

    filter_glob: StringProperty(default="*.csv", options={"HIDDEN"}, description=FILTER_TIP)
    rate: IntProperty(name="Timecode Rate", description=RATE_TIP, default=RATE, min=1, max=1000)

    def execute(self, context: bpy.types.Context) -> set[str]:
        scene = context.scene
        try:
            if not self.filepath:
                raise ValueError("no Live Link Face CSV file chosen")
            path = Path(bpy.path.abspath(self.filepath))
            rig = target_rig(context)
            if rig.get("aurt_baked"):
                raise ValueError(
                    f"rig {rig.name!r} is baked (its drivers are gone): undo the bake or add "
                    "a new rig"
                )
            card = rig_card()
            take = read_livelink(path, self.rate)
            tracks = to_tracks(take, load_mapping(ARKIT_MAPPING), card)
            action, first, last = write_take(
                rig, tracks, card, path, scene.aurt.scene_start, _scene_fps(context)
            )
        except ERRORS as exc:
            self.report({"ERROR"}, f"{exc}; the scene is unchanged")
            return {"CANCELLED"}
        found = int(np.count_nonzero(take.found))
        self.report(
            {"INFO"},
            f"Imported {path.name} on {rig.name}: {found} frames with a face, scene frames "
            f"{first}-{last}, action {action.name!r}",
        )
        return {"FINISHED"}


CLASSES = (AURT_OT_export_livelink, AURT_OT_import_livelink)


def register() -> None:
    for cls in CLASSES:
        bpy.utils.register_class(cls)


def unregister() -> None:
    for cls in reversed(CLASSES):
        bpy.utils.unregister_class(cls)
