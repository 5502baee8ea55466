"""Blender-free runtime: video, detection, alignment, ONNX inference, smoothing, mapping."""
