"""Measure the landmark-derived alignment points against MTCNN's ONet points, and fit them.

    python -m ml.bench.landmark_points tests/media/single_face.mp4 [MORE.mp4 ...] [--fit]

For frames with one confident face (the largest), the frame is aligned by ONet's 5 points
into the bundle's crop, the bundle's landmark output is read there, and the two sets of
points are compared in that crop's pixels. Without --fit it prints the residual of the
constants in au_retarget_addon/core/landmark_points.py; with --fit it also chooses, for the
eyes, the nose and the mouth corners, the anatomical candidate (CANDIDATES: landmarks or
means of landmarks) that follows ONet's points best once a constant offset in the face's
frame is taken out, fits offsets and their slopes against the face's turn, and prints the
constants to paste there.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ml.errors import MLError, exit_on_error

POINT_NAMES = ("eye image-left", "eye image-right", "nose tip", "mouth image-left",
               "mouth image-right")  # fmt: skip


class PointsBenchError(MLError, RuntimeError):
    """A video or bundle the measurement cannot use (names it)."""


@dataclass
class Pairs:
    onet: np.ndarray  # (F, 5, 2) ONet's points in the crop aligned by them
    landmarks: np.ndarray  # (F, 478, 2) the bundle's landmarks in that crop
    clips: list[str]  # per frame, the video's name


def collect(
    videos: list[Path], bundle_dir: Path, per_clip: int = 80, min_conf: float = 0.9
) -> Pairs:
    """Up to `per_clip` evenly spaced frames of each video with a confident largest face."""
    from au_retarget_addon.core.align import align_face, transform_points
    from au_retarget_addon.core.bundle import ModelBundle
    from au_retarget_addon.core.detect import DEFAULT_MODEL_DIR, FaceDetector
    from au_retarget_addon.core.video import VideoReader

    bundle = ModelBundle(bundle_dir, device="cpu")
    if not bundle.has_landmarks:
        raise PointsBenchError(f"model bundle {bundle_dir} has no landmarks output")
    detector = FaceDetector(DEFAULT_MODEL_DIR)
    size = bundle.input.size
    onet, marks, clips = [], [], []
    for video in videos:
        if not video.is_file():
            raise PointsBenchError(f"video {video} does not exist")
        with VideoReader(video) as reader:
            step = max(1, reader.info.frame_count // per_clip)
            for _, _, rgb in reader.frames(step=step):
                dets = detector.detect(rgb)
                if not dets:
                    continue
                det = max(dets, key=lambda d: (d.box[2] - d.box[0]) * (d.box[3] - d.box[1]))
                if det.score < min_conf:
                    continue
                crop, m = align_face(rgb, det.points, size)
                got = bundle.read_all(crop[None], 1, crop_rolls=np.zeros(1))
                if got.presence is not None and got.presence[0] < min_conf:
                    continue
                assert got.landmarks is not None
                onet.append(transform_points(m, det.points))
                marks.append(got.landmarks[0, :, :2])
                clips.append(video.stem)
    if not onet:
        raise PointsBenchError(f"no frame with a confident face in {[str(v) for v in videos]}")
    return Pairs(np.array(onet), np.array(marks, np.float64), clips)


def _in_face_frame(d: np.ndarray, raw: np.ndarray) -> np.ndarray:
    """Vectors d (F, K, 2) in each frame's face axes of the raw points (F, 5, 2), in
    inter-ocular distances."""
    eye = raw[:, 1] - raw[:, 0]
    iod = np.linalg.norm(eye, axis=1, keepdims=True)
    u = eye / iod
    v = np.stack([-u[:, 1], u[:, 0]], 1)
    return np.stack([(d * u[:, None]).sum(-1), (d * v[:, None]).sum(-1)], -1) / iod[:, None]


def offsets_for(pairs: Pairs, picks: tuple[tuple[int, ...], ...]) -> tuple[np.ndarray, np.ndarray]:
    """(5, 2) offsets and (5, 2) slopes per unit of `turn`, in the face frame: the
    least-squares line through ONet minus the raw points against the face's turn."""
    from au_retarget_addon.core.landmark_points import raw_points, turn

    raw = np.array([raw_points(lm, picks) for lm in pairs.landmarks])
    d = _in_face_frame(pairs.onet - raw, raw).reshape(len(raw), -1)
    x = np.stack([np.ones(len(raw)), [turn(r) for r in raw]], 1)
    coef = np.linalg.lstsq(x, d, rcond=None)[0]
    return coef[0].reshape(5, 2), coef[1].reshape(5, 2)


def residual_px(
    pairs: Pairs,
    picks: tuple[tuple[int, ...], ...],
    offsets: np.ndarray,
    slopes: np.ndarray | None = None,
) -> np.ndarray:
    """(5,): mean distance, in crop pixels, from ONet's points to the corrected points."""
    from au_retarget_addon.core.landmark_points import corrected, raw_points

    k = np.zeros((5, 2)) if slopes is None else slopes
    out = [
        np.linalg.norm(corrected(raw_points(lm, picks), offsets, k) - on, axis=1)
        for lm, on in zip(pairs.landmarks, pairs.onet, strict=True)
    ]
    return np.array(out).mean(0)


# Anatomical candidates for each pair of points (image-left, image-right), in MediaPipe's
# mesh: a landmark or the mean of several.
_LEFT_EYE = (33, 7, 163, 144, 145, 153, 154, 155, 133, 173, 157, 158, 159, 160, 161, 246)
_RIGHT_EYE = (362, 382, 381, 380, 374, 373, 390, 249, 263, 466, 388, 387, 386, 385, 384, 398)
CANDIDATES: dict[str, dict[str, tuple[tuple[int, ...], ...]]] = {
    "eyes": {
        "iris centres": ((468,), (473,)),
        "eye contour means": (_LEFT_EYE, _RIGHT_EYE),
        "eye corner means": ((33, 133), (362, 263)),
        "lid midpoint means": ((159, 145), (386, 374)),
    },
    "nose": {"1": ((1,),), "4": ((4,),), "19": ((19,),), "1 and 4": ((1, 4),)},
    "mouth": {
        "61, 291": ((61,), (291,)),
        "62, 292": ((62,), (292,)),
        "76, 306": ((76,), (306,)),
        "78, 308": ((78,), (308,)),
    },
}
_SLOTS = {"eyes": (0, 1), "nose": (2,), "mouth": (3, 4)}


def fit(pairs: Pairs) -> tuple[tuple[tuple[int, ...], ...], dict[str, str]]:
    """For eyes, nose and mouth corners in turn, the candidate whose points lie closest to
    ONet's once constant offsets are taken out; returns the picks and the chosen names."""
    from au_retarget_addon.core.landmark_points import POINT_LANDMARKS

    picks = list(POINT_LANDMARKS)
    names = {}
    for part, options in CANDIDATES.items():
        slots = _SLOTS[part]

        def score(option: tuple[tuple[int, ...], ...], slots: tuple[int, ...] = slots) -> float:
            trial = list(picks)
            for slot, idx in zip(slots, option, strict=True):
                trial[slot] = idx
            offsets = offsets_for(pairs, tuple(trial))[0]
            res = residual_px(pairs, tuple(trial), offsets)
            return float(res[list(slots)].mean())

        name = min(options, key=lambda n: score(options[n]))
        names[part] = name
        for slot, idx in zip(slots, options[name], strict=True):
            picks[slot] = idx
    return tuple(picks), names


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m ml.bench.landmark_points", description=__doc__.split("\n\n")[0]
    )
    ap.add_argument("videos", type=Path, nargs="+")
    ap.add_argument("--model", type=Path, default=Path("au_retarget_addon/models/default"))
    ap.add_argument("--per-clip", type=int, default=80, help="frames sampled per video")
    ap.add_argument("--fit", action="store_true", help="choose landmarks and offsets anew")
    args = ap.parse_args(argv)
    from au_retarget_addon.core import landmark_points as lp

    pairs = collect(args.videos, args.model, args.per_clip)
    print(f"{len(pairs.onet)} frames: " + ", ".join(
        f"{c} {pairs.clips.count(c)}" for c in dict.fromkeys(pairs.clips)))  # fmt: skip
    picks, offsets, slopes = lp.POINT_LANDMARKS, lp.POINT_OFFSETS, lp.POINT_OFFSET_SLOPES
    if args.fit:
        picks, names = fit(pairs)
        offsets, slopes = offsets_for(pairs, picks)
        print("chosen: " + ", ".join(f"{part} {name}" for part, name in names.items()))
    raw = residual_px(pairs, picks, np.zeros((5, 2)))
    res = residual_px(pairs, picks, offsets, slopes)
    iod = float(np.linalg.norm(pairs.onet[:, 1] - pairs.onet[:, 0], axis=1).mean())
    print(f"eyes {iod:.1f} px apart in the crop")
    print("| point | landmarks | offset (x, y) in inter-ocular distances | per unit of turn | "
          "residual px | without offset px |")  # fmt: skip
    print("| --- | --- | --- | --- | --- | --- |")
    for k in range(5):
        off, slope = (f"({a[k, 0]:+.4f}, {a[k, 1]:+.4f})" for a in (offsets, slopes))
        print(f"| {POINT_NAMES[k]} | {picks[k]} | {off} | {slope} | {res[k]:.2f} | {raw[k]:.2f} |")
    for clip in dict.fromkeys(pairs.clips):
        keep = np.array([c == clip for c in pairs.clips])
        sub = Pairs(pairs.onet[keep], pairs.landmarks[keep], [clip] * int(keep.sum()))
        got = residual_px(sub, picks, offsets, slopes)
        print(f"{clip}: residual px {np.round(got, 2).tolist()}")
    if args.fit:
        print(f"POINT_LANDMARKS = {picks}")
        print(f"POINT_OFFSETS = np.array({np.round(offsets, 4).tolist()})")
        print(f"POINT_OFFSET_SLOPES = np.array({np.round(slopes, 4).tolist()})")
        print(f"MEAN_RESIDUAL_PX = {tuple(round(float(x), 2) for x in res)}")
        print(f"RAW_RESIDUAL_PX = {tuple(round(float(x), 2) for x in raw)}")
    return 0


if __name__ == "__main__":
    sys.exit(exit_on_error("python -m ml.bench.landmark_points", main))
