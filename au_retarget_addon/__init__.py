"""AU Retarget Blender extension.

This package must import without bpy so that `au_retarget_addon.core` stays usable
outside Blender: operators and panels (the add-on issue) import bpy in their own
modules, loaded from register().
"""
