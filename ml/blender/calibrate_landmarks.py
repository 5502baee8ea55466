"""Where the tracker's face detector (MTCNN) puts its 5 points on renders of the rig,
relative to the rig's own alignment landmarks: the offsets that
`rigs.geometry.DETECTOR_OFFSETS` holds. Renders are aligned with the corrected points, so
training crops frame the face the way the tracker's crops of real faces do.

    python ml/blender/calibrate_landmarks.py -- --renders 200        # or blender -b -P ...

Prints the mean offsets per point (units of the inter-ocular distance, in the face's frame:
x along the eye line toward the image-right eye, y across it, downwards) and the median
5-point error before and after the correction, for sparse and for uniform random AUs.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

if __name__ == "__main__":  # as a Blender script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    os.environ.setdefault("BLENDER_USER_RESOURCES", tempfile.mkdtemp(prefix="aurt_blender_"))

import numpy as np


def face_frame_offsets(points: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """(5, 2) offsets of `points` from `truth` in units of truth's inter-ocular distance,
    in truth's face frame (x: eye line, y: across it, image-down)."""
    ax = truth[1] - truth[0]
    iod = float(np.linalg.norm(ax))
    ax = ax / iod
    ay = np.array([-ax[1], ax[0]])
    d = points - truth
    return np.stack([d @ ax, d @ ay], axis=1) / iod


def measure(rig, detector, scene, au_mode: str, count: int, seed: int = 77) -> np.ndarray:
    """Offsets (N, 5, 2) of MTCNN's points from the rig's landmarks on N renders with a face
    found (|yaw| <= 30, |pitch| <= 15, |roll| <= 10 degrees)."""
    from ml.data.sampling import SamplingConfig, sample_params
    from rigs import load_spec
    from rigs.builder import landmarks_world, set_params
    from rigs.render_setup import project, render_array

    spec = load_spec()
    cfg = SamplingConfig(au_mode=au_mode, max_yaw=30.0, max_pitch=15.0, max_roll=10.0)
    out = []
    for i in range(count):
        set_params(rig, sample_params(spec, seed=seed, index=i, cfg=cfg))
        image = render_array(scene)
        truth = project(scene, landmarks_world(rig)[1])
        dets = detector.detect(image)
        if dets:
            best = min(dets, key=lambda d: np.abs(d.points - truth).sum())
            out.append(face_frame_offsets(best.points, truth))
    return np.array(out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="calibrate_landmarks", description=__doc__.split("\n\n")[0])
    ap.add_argument("--renders", type=int, default=200, help="renders per AU mode")
    args = ap.parse_args(argv)
    import bpy

    from au_retarget_addon.core.detect import DEFAULT_MODEL_DIR, FaceDetector
    from rigs.builder import build_face_rig
    from rigs.geometry import DETECTOR_OFFSETS
    from rigs.render_setup import setup_render

    bpy.ops.wm.read_factory_settings(use_empty=True)
    rig = build_face_rig()
    scene = bpy.context.scene
    assert scene is not None
    setup_render(scene, 256, samples=2)
    detector = FaceDetector(DEFAULT_MODEL_DIR)
    both = []
    for mode in ("sparse", "uniform"):
        off = measure(rig, detector, scene, mode, args.renders)
        both.append(off)
        before = np.median(np.linalg.norm(off, axis=2).mean(axis=1))
        after = np.median(np.linalg.norm(off - DETECTOR_OFFSETS, axis=2).mean(axis=1))
        print(f"{mode}: {len(off)}/{args.renders} found; median error {before:.3f} IOD "
              f"uncorrected, {after:.3f} with DETECTOR_OFFSETS")  # fmt: skip
    mean = np.concatenate(both).mean(axis=0)
    print("mean offsets over both modes (paste into rigs/geometry.py DETECTOR_OFFSETS):")
    print(np.array2string(mean.round(3), separator=", "))
    return 0


if __name__ == "__main__":
    argv = sys.argv[sys.argv.index("--") + 1 :] if "--" in sys.argv else sys.argv[1:]
    sys.exit(main(argv))
