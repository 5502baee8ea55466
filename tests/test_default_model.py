"""The default model committed inside the add-on, checked against this rig."""

from __future__ import annotations

import numpy as np
import pytest

from au_retarget_addon.core.bundle import ModelBundle
from au_retarget_addon.core.detect import DEFAULT_MODEL_DIR, FaceDetector
from au_retarget_addon.core.track import track_video
from au_retarget_addon.core.tracks import Tracks
from au_retarget_addon.resources import DEFAULT_BUNDLE
from ml.nets.mtcnn import fetch as fetch_mtcnn
from rigs import load_spec
from tests.conftest import MEDIA


@pytest.fixture(scope="module")
def bundle() -> ModelBundle:
    # Raises BundleError when the rig's parameters or gains changed after the model was
    # trained: a rig change has to ship with a retrained default model.
    return ModelBundle(DEFAULT_BUNDLE, load_spec().hash(), device="cpu")


def test_default_model_fits_the_size_budget(bundle: ModelBundle) -> None:
    total = sum(f.stat().st_size for f in DEFAULT_BUNDLE.iterdir() if f.is_file())
    assert total <= 30 * 2**20, total


@pytest.fixture(scope="module")
def sample_tracks(bundle: ModelBundle) -> Tracks:
    fetch_mtcnn(DEFAULT_MODEL_DIR)
    return track_video(MEDIA / "single_face.mp4", bundle, FaceDetector(DEFAULT_MODEL_DIR))


def test_default_model_keys_the_sample_videos_smile(sample_tracks: Tracks) -> None:
    # The sample's subject is neutral in the first 5 frames and smiles from about frame 7
    # to 69 (the mouth corners move up to 0.31 inter-ocular distances, MediaPipe face
    # mesh: docs/rig.md). Measured 2026-12-06 with the shipped model: FACS AU12 0.00
    # neutral and 1.57 smiling; AU12_L 0.34 and AU12_R 0.29 while smiling (the smile is
    # two-sided: 0.045 apart on average, 0.055 at most).
    assert sample_tracks.found.all()
    names, facs = load_spec().facs_intensity(sample_tracks.values)
    au12 = facs[:, names.index("AU12")]
    assert au12[20:60].mean() > au12[:5].mean() + 1.0, au12.round(2)
    left, right = (sample_tracks.values[20:60, sample_tracks.names.index(n)] for n in
                   ("AU12_L", "AU12_R"))  # fmt: skip
    assert abs(left.mean() - right.mean()) < 0.1, (left.mean(), right.mean())
    # a near-frontal, upright face: no pose reading far off
    pose = sample_tracks.values[
        :, [sample_tracks.names.index(n) for n in ("head_yaw", "head_pitch")]
    ]
    assert np.abs(pose).max() < 15.0


def test_confidence_is_the_models_face_presence_and_gates_frames(
    bundle: ModelBundle, sample_tracks: Tracks
) -> None:
    # the landmark network reads a frontal face in every frame of the sample video
    assert bundle.presence_output is not None
    assert sample_tracks.confidence.min() > 0.9
    crops = np.zeros((2, bundle.input.size, bundle.input.size, 3), np.uint8)  # no face
    _, presence = bundle.read(crops, crop_rolls=np.zeros(2))
    assert presence is not None and presence.max() < 0.1
    # a threshold no face reaches refuses every frame, and says why
    from au_retarget_addon.core.face_quality import QualityConfig
    from au_retarget_addon.core.track import TrackingError, TrackSettings

    strict = TrackSettings(stop=8, quality=QualityConfig(min_presence=1.01))
    with pytest.raises(TrackingError, match="8 not read as a face by the model"):
        track_video(MEDIA / "single_face.mp4", bundle, FaceDetector(DEFAULT_MODEL_DIR), strict)
