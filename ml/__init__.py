"""Training side of AU Retarget: datasets, networks, losses, training, evaluation, export.

Never imports bpy (DESIGN.md); `ml/render_pairs.py` is a Blender script, not part of
this package's import graph.
"""
