"""AU Retarget Blender extension: track a face video, key head pose, gaze and FACS action
units on the face rig, bake the keys, retarget them to other characters.

This package imports without bpy so that `au_retarget_addon.core` stays usable outside
Blender; the Blender modules are imported by register().
"""

from __future__ import annotations

from types import ModuleType


def _modules() -> list[ModuleType]:
    from . import (
        check_operator,
        livelink_ops,
        operators,
        panel,
        preferences,
        properties,
        track_operator,
    )

    return [preferences, properties, operators, track_operator, livelink_ops, check_operator, panel]


def register() -> None:
    for module in _modules():
        module.register()


def unregister() -> None:
    for module in reversed(_modules()):
        module.unregister()
