"""Cross-check of detector and rig: MTCNN on renders of the rig finds the face, and its
5 points agree with the rig's 5 alignment points (the rig's landmarks moved by
`rigs.geometry.DETECTOR_OFFSETS`, the constant bias measured by ml/blender/calibrate_landmarks.py).
The renders here use another seed than the calibration, so the check is out of sample."""

from __future__ import annotations

import numpy as np
import pytest

from au_retarget_addon.core.detect import DEFAULT_MODEL_DIR, FaceDetector
from ml.blender.calibrate_landmarks import measure
from ml.nets.mtcnn import fetch as fetch_mtcnn
from rigs.geometry import DETECTOR_OFFSETS

pytestmark = pytest.mark.blender
RENDERS = 200
SEED = 1077  # the calibration used 77


def _cross_check(bpy, rig, au_mode: str) -> tuple[float, float, float]:
    """(share of renders with a face found, median 5-point error / inter-ocular distance
    against the rig's alignment points, and against its uncorrected landmarks)."""
    from rigs.render_setup import setup_render

    fetch_mtcnn(DEFAULT_MODEL_DIR)
    setup_render(bpy.context.scene, 256, samples=2)
    detector = FaceDetector(DEFAULT_MODEL_DIR)
    off = measure(rig, detector, bpy.context.scene, au_mode, RENDERS, seed=SEED)
    corrected = np.median(np.linalg.norm(off - DETECTOR_OFFSETS, axis=2).mean(axis=1))
    raw = np.median(np.linalg.norm(off, axis=2).mean(axis=1))
    return len(off) / RENDERS, float(corrected), float(raw)


def _report(capsys, what: str, rate: float, median: float, raw: float) -> None:
    with capsys.disabled():
        print(
            f"\nMTCNN on {RENDERS} rig renders, |yaw| <= 30, {what}: found {rate:.1%}, "
            f"median 5-point error {median:.1%} of the inter-ocular distance "
            f"({raw:.1%} against the uncorrected landmarks)"
        )


def test_mtcnn_finds_the_rig_and_its_five_points(bpy_clean, face_rig, capsys):
    """Realistic expressions (a few AUs active at a time)."""
    rate, median, raw = _cross_check(bpy_clean, face_rig, "sparse")
    _report(capsys, "sparse AUs", rate, median, raw)
    assert rate >= 0.95
    assert median <= 0.10


@pytest.mark.slow
def test_mtcnn_on_the_rig_with_every_au_random(bpy_clean, face_rig, capsys):
    """Every AU uniformly random at once (open jaw and closed eyes together)."""
    rate, median, raw = _cross_check(bpy_clean, face_rig, "uniform")
    _report(capsys, "every AU random", rate, median, raw)
    assert rate >= 0.95
    assert median <= 0.10
