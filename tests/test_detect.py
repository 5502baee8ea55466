"""MTCNN on real video: the fetched ONNX models match torch, one face is found and tracked
in single_face.mp4, none in no_face.mp4, and missing models fail with the file's name."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from au_retarget_addon.core.align import TEMPLATE, alignment_matrix, transform_points
from au_retarget_addon.core.detect import (
    MODEL_FILES,
    Detection,
    DetectorConfig,
    DetectorError,
    FaceDetector,
    pyramid_scales,
)
from ml.nets import mtcnn

REPO = Path(__file__).resolve().parents[1]
MEDIA = REPO / "tests" / "media"
MODEL_DIR = REPO / mtcnn.DEFAULT_OUT
SAMPLE_EVERY = 6
ONE_FACE_RATE = 0.95
NO_FACE_MAX_RATE = 0.05


def _frames(name: str) -> list[np.ndarray]:
    cap = cv2.VideoCapture(str(MEDIA / name))
    frames = []
    while True:
        ok, bgr = cap.read()
        if not ok:
            break
        frames.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
    cap.release()
    assert frames, f"could not read {name}"
    return frames


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = w * h
    area = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1])
    return float(inter / (area - inter))


@pytest.fixture(scope="module")
def model_dir() -> Path:
    """The project's ONNX models (a no-op when `make weights` already made them)."""
    return mtcnn.fetch(MODEL_DIR)


@pytest.fixture(scope="module")
def detector(model_dir: Path) -> FaceDetector:
    return FaceDetector(model_dir, DetectorConfig(threads=2))


@pytest.fixture(scope="module")
def face_frames() -> list[np.ndarray]:
    frames = _frames("single_face.mp4")
    assert len(frames) == 72 and frames[0].shape == (360, 640, 3)
    return frames


@pytest.fixture(scope="module")
def sampled(detector: FaceDetector, face_frames: list[np.ndarray]) -> dict[int, list[Detection]]:
    """Full detection on every SAMPLE_EVERY-th frame of single_face.mp4."""
    return {i: detector.detect(face_frames[i]) for i in range(0, len(face_frames), SAMPLE_EVERY)}


def test_fetch_exports_match_torch(tmp_path: Path, model_dir: Path) -> None:
    """A fresh fetch (real wheel from the registry) exports, and both it and the project's
    models agree with the torch networks on random input."""
    wheel = mtcnn.download_wheel(tmp_path / "wheel")
    out = mtcnn.fetch(tmp_path / "mtcnn", wheel=wheel)
    assert sorted(p.name for p in out.iterdir()) == ["SOURCE.md", *sorted(MODEL_FILES)]
    assert "facenet-pytorch==2.6.0" in (out / "SOURCE.md").read_text()
    assert "MIT" in (out / "SOURCE.md").read_text()
    blobs = mtcnn.read_wheel(wheel)
    for name in mtcnn.NETS:
        net = mtcnn.load_net(name, blobs[name])
        for folder in (out, model_dir):
            assert mtcnn.check_onnx(net, name, folder / f"{name}.onnx", seed=7) < mtcnn.TOLERANCE


def test_onnx_check_can_fail(model_dir: Path) -> None:
    """The export check is not vacuous: a slightly different network is rejected."""
    import torch

    net = mtcnn.ONet().eval()
    with torch.no_grad():
        for p in net.parameters():
            p.normal_(0.0, 0.1)
    with pytest.raises(mtcnn.WeightsError, match="differs from torch"):
        mtcnn.check_onnx(net, "onet", model_dir / "onet.onnx")


def test_wrong_weights_rejected() -> None:
    with pytest.raises(mtcnn.WeightsError, match="sha256"):
        mtcnn.load_net("pnet", b"not the pinned file")


def test_pyramid_covers_min_face_to_image() -> None:
    scales = pyramid_scales(360, 640, 20.0, 0.709)
    assert scales[0] == pytest.approx(12 / 20)
    assert 360 * scales[-1] >= 12 > 360 * scales[-1] * 0.709


def test_one_face_with_plausible_points(sampled: dict[int, list[Detection]], capsys) -> None:
    counts = [len(d) for d in sampled.values()]
    rate = float(np.mean(np.array(counts) == 1))
    with capsys.disabled():
        print(f"\nMTCNN single_face.mp4: exactly one face in {rate:.1%} of {len(counts)} frames")
    assert rate >= ONE_FACE_RATE
    for i, found in sampled.items():
        if len(found) != 1:
            continue
        det = found[0]
        x1, y1, x2, y2 = det.box
        pts = det.points
        assert det.score > 0.7 and 60 < x2 - x1 < 360 and 60 < y2 - y1 < 360, (i, det.box)
        assert pts.shape == (5, 2), i
        inside = (pts[:, 0] > x1) & (pts[:, 0] < x2) & (pts[:, 1] > y1) & (pts[:, 1] < y2)
        assert inside.all(), (i, det.box, pts)
        eye_y, nose_y, mouth_y = pts[:2, 1].max(), pts[2, 1], pts[3:, 1].min()
        assert eye_y < nose_y < mouth_y, (i, pts)
        assert pts[0, 0] < pts[1, 0] and pts[3, 0] < pts[4, 0], (i, pts)


def test_points_fit_alignment_template(sampled: dict[int, list[Detection]]) -> None:
    """Our point order is align.py's: a similarity fit to its template leaves small residuals
    (a swapped pair would leave residuals of the order of the eye distance)."""
    size = 128
    for i, found in sampled.items():
        if found:
            m = alignment_matrix(found[0].points, size)
            err = np.abs(transform_points(m, found[0].points) - TEMPLATE * size).max()
            assert err < 0.06 * size, (i, err)


def test_refine_tracks_consecutive_frames(
    detector: FaceDetector, face_frames: list[np.ndarray], sampled: dict[int, list[Detection]]
) -> None:
    """refine() follows the face through all 72 frames and agrees with full detection."""
    box = sampled[0][0].box
    for i, frame in enumerate(face_frames[1:], start=1):
        found = detector.refine(frame, box)
        assert found is not None, f"track lost at frame {i}"
        box = found.box
        if i in sampled and len(sampled[i]) == 1:
            assert _iou(box, sampled[i][0].box) > 0.7, i


def test_refine_lost_without_face(detector: FaceDetector, sampled: dict[int, list[Detection]]):
    frame = _frames("no_face.mp4")[0]
    box = sampled[0][0].box
    assert detector.refine(frame, box) is None


def test_no_face_video(detector: FaceDetector, capsys) -> None:
    frames = _frames("no_face.mp4")[::3]
    rate = float(np.mean([len(detector.detect(f)) > 0 for f in frames]))
    with capsys.disabled():
        print(f"\nMTCNN no_face.mp4: a face reported in {rate:.1%} of {len(frames)} frames")
    assert rate <= NO_FACE_MAX_RATE


def test_missing_model_names_path(tmp_path: Path, model_dir: Path) -> None:
    for name in MODEL_FILES[:2]:
        shutil.copy(model_dir / name, tmp_path / name)
    with pytest.raises(DetectorError, match="onet.onnx"):
        FaceDetector(tmp_path)
    (tmp_path / "onet.onnx").write_bytes(b"not an onnx model")
    with pytest.raises(DetectorError, match=r"cannot read .*onet\.onnx"):
        FaceDetector(tmp_path)


def test_bad_image_rejected(detector: FaceDetector) -> None:
    with pytest.raises(DetectorError, match="RGB"):
        detector.detect(np.zeros((10, 10), dtype=np.uint8))
    with pytest.raises(DetectorError, match="uint8"):
        detector.detect(np.zeros((10, 10, 3), dtype=np.float32))
    assert detector.detect(np.zeros((8, 8, 3), dtype=np.uint8)) == []


NO_TORCH = """
import sys
class _Block:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("torch", "bpy"):
            raise ImportError(f"blocked: {name}")
        return None
sys.meta_path.insert(0, _Block())
import cv2
from au_retarget_addon.core.detect import FaceDetector
cap = cv2.VideoCapture(sys.argv[2])
ok, bgr = cap.read()
found = FaceDetector(sys.argv[1]).detect(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
assert "torch" not in sys.modules
print(len(found))
"""


def test_detector_runs_without_torch(model_dir: Path) -> None:
    """Inside Blender there is no torch: the detector needs only numpy, OpenCV, onnxruntime."""
    cmd = [sys.executable, "-c", NO_TORCH, str(model_dir), str(MEDIA / "single_face.mp4")]
    out = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "1"
