"""Blender-side scripts, run with blender -b -P: the only ml modules besides ml/render_pairs.py that import bpy."""
