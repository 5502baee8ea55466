"""Regenerate the chips and dlib's descriptors in this folder (needs dlib; not run by CI).

Run with throw-away installs, never the project's environment (see README.md here):

    pip download --no-deps --no-binary :all: -d /tmp/fr face_recognition==1.3.0
    tar xzf /tmp/fr/face_recognition-1.3.0.tar.gz -C /tmp/fr
    pip install --no-deps --target /tmp/dlibenv dlib-bin==20.0.1.post1 \
        face-recognition-models==0.3.0
    PYTHONPATH=/tmp/dlibenv python tests/data/identity/make_reference.py \
        --images /tmp/fr/face_recognition-1.3.0/tests/test_images \
        --video tests/media/single_face.mp4 \
        --models /tmp/dlibenv/face_recognition_models/models
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import dlib
import numpy as np

HERE = Path(__file__).resolve().parent
# chip file -> (source, frame index for the video or -1 for a photo)
CHIPS = {
    "biden.png": ("biden.jpg", -1),
    "obama_1.png": ("obama.jpg", -1),
    "obama_2.png": ("obama2.jpg", -1),
    "obama_3.png": ("obama3.jpg", -1),
    "video_f00.png": ("video", 0),
    "video_f24.png": ("video", 24),
    "video_f48.png": ("video", 48),
}


def read_frame(video: Path, index: int) -> np.ndarray:
    """RGB frame `index` of the video."""
    cap = cv2.VideoCapture(str(video))
    cap.set(cv2.CAP_PROP_POS_FRAMES, index)
    ok, frame = cap.read()
    cap.release()
    if not ok:
        raise SystemExit(f"{video}: no frame {index}")
    return cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)


def chip(rgb: np.ndarray, detector, predictor) -> np.ndarray:
    """dlib's aligned 150 px chip (padding 0.25, the recognition model's own setting)."""
    faces = detector(rgb, 1)
    if len(faces) != 1:
        raise SystemExit(f"expected one face, found {len(faces)}")
    return dlib.get_face_chip(rgb, predictor(rgb, faces[0]), size=150, padding=0.25)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--images", type=Path, required=True)
    ap.add_argument("--video", type=Path, required=True)
    ap.add_argument("--models", type=Path, required=True)
    args = ap.parse_args()
    detector = dlib.get_frontal_face_detector()
    predictor = dlib.shape_predictor(str(args.models / "shape_predictor_5_face_landmarks.dat"))
    net = dlib.face_recognition_model_v1(
        str(args.models / "dlib_face_recognition_resnet_model_v1.dat")
    )
    descriptors = []
    for name, (source, frame) in CHIPS.items():
        rgb = (
            read_frame(args.video, frame)
            if frame >= 0
            else cv2.imread(str(args.images / source), cv2.IMREAD_COLOR)[..., ::-1].copy()
        )
        face = chip(rgb, detector, predictor)
        cv2.imwrite(str(HERE / name), cv2.cvtColor(face, cv2.COLOR_RGB2BGR))
        again = cv2.cvtColor(cv2.imread(str(HERE / name)), cv2.COLOR_BGR2RGB)  # as tests read it
        descriptors.append(np.asarray(net.compute_face_descriptor(again), dtype=np.float32))
    np.save(HERE / "dlib_descriptors.npy", np.stack(descriptors))
    print(f"wrote {len(CHIPS)} chips and dlib_descriptors.npy to {HERE}")


if __name__ == "__main__":
    main()
