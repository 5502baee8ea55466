"""Cross-check of detector and rig: MTCNN on renders of the rig finds the face, and its
5 points agree with the rig's own projected alignment landmarks."""

from __future__ import annotations

import numpy as np
import pytest

from au_retarget_addon.core.detect import DEFAULT_MODEL_DIR, FaceDetector
from ml.mtcnn import fetch as fetch_mtcnn
from ml.sampling import SamplingConfig, sample_params
from rigs import load_spec

pytestmark = pytest.mark.blender

RENDERS = 200


def _cross_check(bpy, rig, detector, au_mode: str, count: int) -> tuple[float, float]:
    """(share of renders with a face found, median 5-point error / inter-ocular distance)."""
    from rigs.builder import landmarks_world, set_params
    from rigs.render_setup import project, render_array

    spec = load_spec()
    scene = bpy.context.scene
    cfg = SamplingConfig(au_mode=au_mode, max_yaw=30.0, max_pitch=15.0, max_roll=10.0)
    found, errors = 0, []
    for i in range(count):
        set_params(rig, sample_params(spec, seed=77, index=i, cfg=cfg))
        image = render_array(scene)
        truth = project(scene, landmarks_world(rig)[1])  # (5, 2), our order
        dets = detector.detect(image)
        if not dets:
            continue
        found += 1
        best = min(dets, key=lambda d: np.abs(d.points - truth).sum())
        iod = np.linalg.norm(truth[1] - truth[0])
        errors.append(np.linalg.norm(best.points - truth, axis=1).mean() / iod)
    return found / count, float(np.median(errors))


def _detector(bpy) -> FaceDetector:
    from rigs.render_setup import setup_render

    folder = DEFAULT_MODEL_DIR
    fetch_mtcnn(folder)
    setup_render(bpy.context.scene, 256, samples=2)
    return FaceDetector(folder)


def test_mtcnn_finds_the_rig_and_its_five_points(bpy_clean, face_rig, capsys):
    """Realistic expressions (a few AUs active at a time)."""
    rate, median = _cross_check(bpy_clean, face_rig, _detector(bpy_clean), "sparse", RENDERS)
    with capsys.disabled():
        print(
            f"\nMTCNN on {RENDERS} rig renders, |yaw| <= 30, sparse AUs: found {rate:.1%}, "
            f"median 5-point error {median:.1%} of the inter-ocular distance"
        )
    assert rate >= 0.95
    assert median <= 0.10


@pytest.mark.slow
@pytest.mark.xfail(strict=True, reason="issue 8 open: 10.8% > 10% with every AU random")
def test_mtcnn_on_the_rig_with_every_au_random(bpy_clean, face_rig, capsys):
    """Every AU uniformly random at once (open jaw and closed eyes together). Measured
    10.8% on 100 renders: MTCNN puts the eyes higher and the mouth corners lower than the
    rig's landmarks; this is the open part of the cross-check."""
    rate, median = _cross_check(bpy_clean, face_rig, _detector(bpy_clean), "uniform", RENDERS)
    with capsys.disabled():
        print(
            f"\nMTCNN on {RENDERS} rig renders, |yaw| <= 30, every AU random: found "
            f"{rate:.1%}, median 5-point error {median:.1%} of the inter-ocular distance"
        )
    assert rate >= 0.95
    assert median <= 0.10
