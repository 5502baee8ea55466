"""Blender-side scripts, run with blender -b -P: with ml/render_pairs.py and
ml/bench/render_pairs.py the only ml modules that import bpy."""
