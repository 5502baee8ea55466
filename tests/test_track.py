"""Tracking core end to end on the sample videos, with a bundle exported from a tiny
regressor trained here on rendered pairs (the real default model is a later issue)."""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from au_retarget_addon.core.bundle import BundleError, ModelBundle
from au_retarget_addon.core.detect import DEFAULT_MODEL_DIR, FaceDetector
from au_retarget_addon.core.track import TrackingError, TrackSettings, track_video
from au_retarget_addon.core.tracks import (
    Tracks,
    TracksError,
    calibrate_neutral,
    fill_missing,
    read_npz,
    write_npz,
)
from ml.nets.mtcnn import fetch as fetch_mtcnn
from rigs import load_spec
from tests.conftest import MEDIA, TINY_SIZE

SIZE = TINY_SIZE


@pytest.fixture(scope="module")
def detector(tmp_path_factory) -> FaceDetector:
    folder = DEFAULT_MODEL_DIR
    fetch_mtcnn(folder)
    return FaceDetector(folder)


@pytest.fixture(scope="module")
def bundle_dir(tiny_bundle) -> Path:
    return tiny_bundle


def test_bundle_card_and_onnx_agree_with_spec(bundle_dir):
    spec = load_spec()
    b = ModelBundle(bundle_dir, spec.hash(), device="cpu")
    assert b.names == spec.names and b.input.size == SIZE
    out = b.run(np.random.default_rng(0).integers(0, 255, (5, SIZE, SIZE, 3), dtype=np.uint8))
    assert out.shape == (5, spec.size) and np.isfinite(out).all()


def test_bundle_errors_name_the_problem(bundle_dir, tmp_path):
    import shutil

    with pytest.raises(BundleError, match="rig spec"):
        ModelBundle(bundle_dir, "f" * 64)
    bad = tmp_path / "bad.aurt"
    shutil.copytree(bundle_dir, bad)
    (bad / "model.onnx").write_bytes(b"corrupt")
    with pytest.raises(BundleError, match="model.onnx"):
        ModelBundle(bad)
    (bad / "model_card.json").unlink()
    with pytest.raises(BundleError, match="model_card.json"):
        ModelBundle(bad)
    with pytest.raises(BundleError, match="does not exist"):
        ModelBundle(tmp_path / "nothing")


def test_track_sample_video(bundle_dir, detector):
    bundle = ModelBundle(bundle_dir, load_spec().hash(), device="cpu")
    seen = []
    tracks = track_video(
        MEDIA / "single_face.mp4",
        bundle,
        detector,
        TrackSettings(step=3, neutral="auto"),
        progress=lambda d, t: seen.append((d, t)) is None,
    )
    assert list(tracks.frames) == list(range(0, 72, 3))
    assert tracks.found.all() and np.isfinite(tracks.values).all()
    assert (tracks.confidence > 0.9).all() and seen[-1] == (24, 24)
    au = [tracks.names.index(n) for n in tracks.names if n.startswith("AU")]
    calibrated = tracks.values[:, au]  # AU values minus the neutral frame's, clamped to [0, 1]
    assert (calibrated >= 0).all() and (calibrated <= 1).all()


def _rotated_copy(src: Path, out: Path, degrees: float) -> Path:
    """The video with every frame turned `degrees` counter-clockwise about its centre."""
    import cv2

    cap = cv2.VideoCapture(str(src))
    fps = cap.get(cv2.CAP_PROP_FPS)
    ok, frame = cap.read()
    h, w = frame.shape[:2]
    m = cv2.getRotationMatrix2D((w / 2, h / 2), degrees, 1.0)
    writer = cv2.VideoWriter(str(out), cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
    while ok:
        writer.write(cv2.warpAffine(frame, m, (w, h), borderMode=cv2.BORDER_REPLICATE))
        ok, frame = cap.read()
    writer.release()
    cap.release()
    return out


def test_a_roll_in_crop_bundle_adds_the_crop_angle(bundle_dir, detector, tmp_path):
    """The same graph, its card saying roll_in_crop: head_roll is the graph's plus the roll
    the alignment took out, so turning the video turns the keyed roll with it."""
    in_crop = tmp_path / "in_crop.aurt"
    shutil.copytree(bundle_dir, in_crop)
    card = json.loads((in_crop / "model_card.json").read_text())
    (in_crop / "model_card.json").write_text(json.dumps({**card, "roll_in_crop": True}))
    plain, rolled = ModelBundle(bundle_dir, device="cpu"), ModelBundle(in_crop, device="cpu")
    turned = _rotated_copy(MEDIA / "single_face.mp4", tmp_path / "turned.mp4", 12.0)
    raw = TrackSettings(step=6, smoothing=None)
    j = plain.names.index("head_roll")
    base = track_video(MEDIA / "single_face.mp4", plain, detector, raw).values
    upright = track_video(MEDIA / "single_face.mp4", rolled, detector, raw).values
    tilted = track_video(turned, rolled, detector, raw).values
    np.testing.assert_allclose(np.delete(upright, j, 1), np.delete(base, j, 1), atol=1e-5)
    assert np.abs(upright[:, j] - base[:, j]).max() < 6  # a near-upright face: small angles
    # counter-clockwise on screen is positive head_roll (the rig's sign: a rendered face
    # rolled by r has a crop roll of r, tests/test_render_pairs.py)
    assert np.median(tilted[:, j] - upright[:, j]) == pytest.approx(12.0, abs=2.0)


def test_cancel_and_no_face(bundle_dir, detector):
    bundle = ModelBundle(bundle_dir, device="cpu")
    with pytest.raises(TrackingError, match="cancelled at frame"):
        track_video(MEDIA / "single_face.mp4", bundle, detector, progress=lambda d, t: d < 3)
    with pytest.raises(TrackingError, match="no face found"):
        track_video(MEDIA / "no_face.mp4", bundle, detector, TrackSettings(step=10))
    with pytest.raises(TrackingError, match="does not exist"):
        track_video(MEDIA / "missing.mp4", bundle, detector)


def test_command_line_writes_csv(bundle_dir, tmp_path):
    out = tmp_path / "tracks.csv"
    cmd = [
        sys.executable,
        "-m",
        "au_retarget_addon.core",
        "track",
        str(MEDIA / "single_face.mp4"),
        "--model",
        str(bundle_dir),
        "--out",
        str(out),
        "--step",
        "12",
    ]
    res = subprocess.run(cmd, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr[-2000:]
    rows = list(csv.reader(out.open()))
    card = json.loads((bundle_dir / "model_card.json").read_text())
    assert rows[0] == ["frame", "time", "confidence", *card["outputs"]]
    assert [r[0] for r in rows[1:]] == ["0", "12", "24", "36", "48", "60"]
    res = subprocess.run(
        [*cmd[:4], str(tmp_path / "none.mp4"), *cmd[5:]], capture_output=True, text=True
    )
    assert res.returncode == 2 and "none.mp4" in res.stderr
    # an image sequence, timed by --fps
    import cv2

    frames = tmp_path / "frames"
    frames.mkdir()
    cap = cv2.VideoCapture(str(MEDIA / "single_face.mp4"))
    for i in range(3):
        cv2.imwrite(str(frames / f"frame_{i:04d}.png"), cap.read()[1])
    cap.release()
    seq = [*cmd[:4], str(frames / "frame_%04d.png"), *cmd[5:-2], "--fps", "24"]
    res = subprocess.run(seq, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr[-2000:]
    rows = list(csv.reader(out.open()))[1:]
    assert [float(r[1]) for r in rows] == pytest.approx([0, 1 / 24, 2 / 24], abs=1e-4)


def _toy_tracks() -> Tracks:
    values = np.array([[0.2, 0.5], [np.nan, np.nan], [0.6, 0.1], [0.4, 0.3]])
    return Tracks(
        np.arange(4),
        np.arange(4) / 10,
        ["AU12_L", "head_yaw"],
        values,
        np.array([1, 0, 1, 1.0]),
        10.0,
    )


def test_missing_frame_policies():
    assert np.isnan(fill_missing(_toy_tracks(), "none").values[1]).all()
    np.testing.assert_allclose(fill_missing(_toy_tracks(), "hold").values[1], [0.2, 0.5])
    np.testing.assert_allclose(fill_missing(_toy_tracks(), "interpolate").values[1], [0.4, 0.3])
    with pytest.raises(TracksError, match="policy"):
        fill_missing(_toy_tracks(), "guess")


def test_neutral_calibration_subtracts_and_clamps():
    card = {"ranges": {"AU12_L": [0.0, 1.0]}, "groups": {"au": ["AU12_L"]}}
    t = _toy_tracks()
    row = calibrate_neutral(t, card, "auto")
    assert row == 0
    np.testing.assert_allclose(t.values[[0, 2, 3], 0], [0.0, 0.4, 0.2])
    np.testing.assert_allclose(t.values[[0, 2, 3], 1], [0.5, 0.1, 0.3])  # pose untouched
    t = _toy_tracks()
    calibrate_neutral(t, card, 2)
    assert (t.values[[0, 2, 3], 0] == 0).all()  # 0.2-0.6 and 0.4-0.6 clamp to the range
    with pytest.raises(TracksError, match="neutral frame 1"):
        calibrate_neutral(_toy_tracks(), card, 1)


def test_npz_round_trip(tmp_path):
    t = _toy_tracks()
    write_npz(t, tmp_path / "t.npz")
    r = read_npz(tmp_path / "t.npz")
    assert r.names == t.names and np.array_equal(r.values, t.values, equal_nan=True)


def test_filtered_track_is_smoother_and_lags_little(bundle_dir, detector):
    """On the sample video: lower frame-to-frame variance, lag at most 2 frames (67 ms)."""
    bundle = ModelBundle(bundle_dir, device="cpu")
    raw = track_video(MEDIA / "single_face.mp4", bundle, detector, TrackSettings(smoothing=None))
    smooth = track_video(MEDIA / "single_face.mp4", bundle, detector, TrackSettings())
    d_raw = np.diff(raw.values, axis=0).var(axis=0)
    d_smooth = np.diff(smooth.values, axis=0).var(axis=0)
    moving = d_raw > 1e-10
    assert (d_smooth[moving] < d_raw[moving]).mean() > 0.9
    lags = []
    for c in np.flatnonzero(moving):
        a = raw.values[:, c] - raw.values[:, c].mean()
        b = smooth.values[:, c] - smooth.values[:, c].mean()
        corr = [np.dot(a[: len(a) - k], b[k:]) for k in range(6)]
        lags.append(int(np.argmax(corr)))
    assert np.median(lags) <= 2


def test_follows_one_face_among_several(detector):
    """Two copies of the sample face side by side: the largest is followed, or the one picked."""
    from au_retarget_addon.core.track import FaceFollower
    from au_retarget_addon.core.video import VideoReader

    with VideoReader(MEDIA / "single_face.mp4") as v:
        frames = [img for _, _, img in v.frames(step=8)]
    import cv2

    scenes = []
    for img in frames:
        small = cv2.resize(img, None, fx=0.6, fy=0.6)
        canvas = np.zeros((360, 640 + small.shape[1], 3), np.uint8)
        canvas[:, :640] = img
        canvas[: small.shape[0], 640:] = small
        scenes.append(canvas)
    for pick, side in ((0, "left"), (1, "right")):
        follow = FaceFollower(detector, pick)
        xs = [follow(s)[0].box[0] for s in scenes]  # type: ignore[union-attr]
        assert all((x < 640) == (side == "left") for x in xs), (pick, xs)


def test_benchmark_reports_every_stage_within_the_end_to_end_time(bundle_dir, detector):
    from au_retarget_addon.core import bench

    video = MEDIA / "single_face.mp4"
    bundle = ModelBundle(bundle_dir)
    result = bench.run(video, bundle, detector, repeats=1)
    assert result["frames"] == 72
    stages = [result[f"{s}_ms"] for s in bench.STAGES]
    assert all(ms > 0 for ms in stages)
    assert sum(stages) <= 1000 / result["fps"] * 1.01  # stages partition the run's time
    text = bench.table(result, video, bundle, 0)
    assert "end to end" in text and "infer" in text and "baseline" in text


def test_track_an_image_sequence_as_the_video(bundle_dir, detector, tmp_path):
    """A folder of numbered frames tracks to the same values as the video it came from,
    timed by the given frame rate."""
    import cv2

    from au_retarget_addon.core.video import VideoReader

    folder = tmp_path / "frames"
    folder.mkdir()
    with VideoReader(MEDIA / "single_face.mp4") as v:
        for i, _, rgb in v.frames(stop=6):
            cv2.imwrite(str(folder / f"f_{i:03d}.png"), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    bundle = ModelBundle(bundle_dir, load_spec().hash(), device="cpu")
    settings = TrackSettings(stop=6, smoothing=None)
    video = track_video(MEDIA / "single_face.mp4", bundle, detector, settings)
    settings.sequence_fps = 24.0
    seq = track_video(folder, bundle, detector, settings)
    assert list(seq.frames) == list(range(6)) and seq.fps == 24.0
    assert seq.times == pytest.approx(np.arange(6) / 24.0)
    assert np.abs(seq.values - video.values).max() < 1e-5


def test_blender_frame_rate_keeps_ntsc_rates_exact():
    from au_retarget_addon.core.tracks import blender_frame_rate

    assert blender_frame_rate(30.0) == (30, 1.0)
    fps, base = blender_frame_rate(30000 / 1001)
    assert fps == 30 and base == pytest.approx(1.001)
    assert blender_frame_rate(24000 / 1001)[0] == 24
    with pytest.raises(TracksError, match="positive"):
        blender_frame_rate(0.0)


def test_console_progress_prints_at_most_once_per_interval_and_the_last_frame():
    import io

    from au_retarget_addon.core.console_progress import ConsoleProgress

    out = io.StringIO()
    progress = ConsoleProgress("clip.mp4", every_s=3600.0, out=out)
    assert all(progress(k, 50) for k in range(1, 51))
    lines = out.getvalue().splitlines()
    assert len(lines) == 2  # the first frame, then the last
    assert lines[-1].startswith("Tracking clip.mp4: frame 50 of 50 (")
    assert lines[-1].endswith(" frames/s)")


@pytest.fixture(scope="module")
def default_bundle() -> ModelBundle:
    from au_retarget_addon.resources import DEFAULT_BUNDLE

    return ModelBundle(DEFAULT_BUNDLE, load_spec().hash(), device="cpu")


def test_landmark_crops_follow_the_face_with_few_detector_runs(default_bundle, detector):
    """With the default bundle, each crop comes from the previous frame's landmarks: the face
    is in every frame, MTCNN runs once to start, and the values stay close to MTCNN's crops."""
    assert default_bundle.has_landmarks
    raw = TrackSettings(stop=36, smoothing=None)
    by_landmarks = track_video(MEDIA / "single_face.mp4", default_bundle, detector, raw)
    raw.crops = "detector"
    by_detector = track_video(MEDIA / "single_face.mp4", default_bundle, detector, raw)
    assert by_landmarks.found.all() and by_detector.found.all()
    assert by_landmarks.report.detector_frames <= 2 and by_detector.report.detector_frames == 36
    assert (by_landmarks.confidence > 0.9).all()  # F's presence
    names = by_landmarks.names
    au = [i for i, n in enumerate(names) if n.startswith("AU")]
    diff = np.abs(by_landmarks.values - by_detector.values)
    assert diff[:, au].mean() < 0.03  # measured 0.014 on the whole video (BENCHMARKS.md)
    for name in ("head_yaw", "head_pitch", "head_roll"):
        assert diff[:, names.index(name)].mean() < 1.5, name  # degrees; measured 0.1 to 0.5


def test_a_bundle_without_landmarks_falls_back_to_the_detector(bundle_dir, detector):
    bundle = ModelBundle(bundle_dir, device="cpu")
    assert not bundle.has_landmarks
    reading = bundle.read_all(np.zeros((2, SIZE, SIZE, 3), np.uint8))
    assert reading.landmarks is None and reading.values.shape == (2, len(bundle.names))
    settings = TrackSettings(step=6, smoothing=None, crops="landmarks")
    steered = track_video(MEDIA / "single_face.mp4", bundle, detector, settings)
    settings.crops = "detector"
    plain = track_video(MEDIA / "single_face.mp4", bundle, detector, settings)
    assert steered.report.detector_frames == len(steered.frames) == 12
    np.testing.assert_array_equal(steered.values, plain.values)


def test_default_bundle_reads_landmarks_in_crop_pixels(default_bundle):
    import cv2

    from au_retarget_addon.core.video import VideoReader

    with VideoReader(MEDIA / "single_face.mp4") as v:
        image = next(iter(v.frames(stop=1)))[2]
    det = max(FaceDetector(DEFAULT_MODEL_DIR).detect(image), key=lambda d: d.score)
    from au_retarget_addon.core.align import align_face

    crop, _ = align_face(image, det.points, default_bundle.input.size)
    got = default_bundle.read_all(np.stack([crop, cv2.flip(crop, 1)]), crop_rolls=np.zeros(2))
    assert got.landmarks is not None and got.landmarks.shape == (2, 478, 3)
    xy = got.landmarks[0, :, :2]
    assert (xy > 0).all() and (xy < default_bundle.input.size).all()
    values, presence = default_bundle.read(crop[None], crop_rolls=np.zeros(1))
    np.testing.assert_allclose(values, got.values[:1], atol=1e-4)  # read() is unchanged


def test_a_bad_crop_mode_is_a_one_line_error(bundle_dir, tmp_path):
    with pytest.raises(TrackingError, match="crops must be landmarks or detector, got 'mesh'"):
        TrackSettings(crops="mesh").check()
    video, out = str(MEDIA / "single_face.mp4"), str(tmp_path / "t.csv")
    cmd = [sys.executable, "-m", "au_retarget_addon.core", "track", video,
           "--model", str(bundle_dir), "--out", out, "--crops", "mesh"]  # fmt: skip
    res = subprocess.run(cmd, capture_output=True, text=True)
    assert res.returncode == 2 and "--crops" in res.stderr and "'mesh'" in res.stderr


def test_landmark_crops_hand_back_to_the_detector_when_the_face_is_gone(
    default_bundle, detector, tmp_path
):
    """Black frames in the middle: the steered crop loses the face, MTCNN looks on each
    black frame and finds the face again after them; the face is tracked on both sides."""
    import cv2

    cap = cv2.VideoCapture(str(MEDIA / "single_face.mp4"))
    faces = [cap.read()[1] for _ in range(16)]
    cap.release()
    out = tmp_path / "gap.mp4"
    h, w = faces[0].shape[:2]
    writer = cv2.VideoWriter(str(out), cv2.VideoWriter.fourcc(*"mp4v"), 30.0, (w, h))
    for frame in faces[:8] + [np.zeros_like(faces[0])] * 4 + faces[8:]:
        writer.write(frame)
    writer.release()
    tracks = track_video(out, default_bundle, detector, TrackSettings(smoothing=None))
    assert list(np.flatnonzero(~tracks.found)) == [8, 9, 10, 11]
    assert tracks.report.detector_frames == 1 + 4 + 1  # the start, each black frame, the return
    steady = track_video(out, default_bundle, detector, TrackSettings(crops="detector"))
    assert (steady.found == tracks.found).all()
