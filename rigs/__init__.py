"""The bone-driven face rig: spec (bpy-free), geometry (bpy-free) and builder (bpy)."""

from .spec import RigSpec, RigSpecError, load_spec

__all__ = ["RigSpec", "RigSpecError", "load_spec"]
