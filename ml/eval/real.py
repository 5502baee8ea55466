"""Evaluation on real video: a bundle's AU and head-pose tracks on the real-face set's
held-out people, against MediaPipe FaceLandmarker on the same frames (a yardstick, never
a teacher: ml/eval/mediapipe_yardstick.py), plus what needs no yardstick: the mirror image read
alike, both sides of a symmetric expression alike.

    python -m ml.eval.real                                  # the add-on's default model
    python -m ml.eval.real --bundle runs/recipe/bundle --out eval_real.json

Per person and clip it prints Pearson r between each AU (left and right averaged) and its
blendshape proxy (AUs whose proxy barely moves there, std < 0.01, are left out; an AU the
model holds constant counts as r = 0), head yaw, pitch and roll r against MediaPipe's
transform (roll also as the aligned crop shows it: less the alignment's angle), the mirror
consistency (each crop and its horizontal flip: the mean AU difference on the 0..1 scale
after swapping sides, the yaw and roll disagreement in degrees) and the left/right gap on
frames where MediaPipe reads a symmetric smile, brow raise or blink. For a model whose
graph outputs a face-presence probability, `kept_by_presence` repeats AU and pose r on the
frames the add-on keys (presence >= the quality gate's min_presence: core/face_quality.py).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from au_retarget_addon.core.bundle import CARD_FILE, BundleError, ModelBundle
from au_retarget_addon.core.face_quality import QualityConfig
from au_retarget_addon.core.video import VideoError, VideoReader
from ml.cache import cache_dir
from ml.data.real_face_set import build, load_crops, save_npz, split_clips
from ml.data.real_media import SET_FILE, RealFaceSet, load_set
from ml.errors import MLError, exit_on_error
from ml.eval import mediapipe_yardstick as mpy
from ml.eval.metrics import pearson_r
from rigs.spec import load_spec

log = logging.getLogger(__name__)

DEFAULT_BUNDLE = Path(__file__).resolve().parents[2] / "au_retarget_addon" / "models" / "default"
PROXY_MIN_STD = 0.01
SYMMETRIC = (0.3, 0.1)  # both sides above 0.3 and within 0.1 of each other


class EvalRealError(MLError, RuntimeError):
    """The bundle, the set or the yardstick is missing (names it)."""


def yardstick(
    media: Path, cache: Path, rfs: RealFaceSet, clip: str, person: str, crops: dict[str, Any],
    task: Path,
) -> dict[str, np.ndarray]:  # fmt: skip
    """MediaPipe's reading of the person's frames (found, scores (N, 52), matrix (N, 4, 4)),
    one row per crop, cached beside the crops under the crops' key and the model's sha."""
    out = cache / "mediapipe" / f"{clip}.{person}.npz"
    key = f"{crops['key']}:{mpy.TASK_SHA256}"
    if out.is_file():
        with np.load(out) as z:
            if str(z["key"]) == key:
                return {k: z[k] for k in z.files}
    n = len(crops["frames"])
    found = np.zeros(n, bool)
    scores = np.zeros((n, 52), np.float32)
    matrix = np.tile(np.eye(4, dtype=np.float32), (n, 1, 1))
    row_of = {int(f): i for i, f in enumerate(crops["frames"])}
    lm = mpy.landmarker(task)
    path = media / rfs.clips[clip].filename
    try:
        with VideoReader(path) as reader, lm:
            bar = tqdm(total=reader.info.frame_count, desc=f"MediaPipe {clip} {person}",
                       unit="frame", leave=False)  # fmt: skip
            for idx, t, rgb in reader.frames():
                bar.update()
                i = row_of.get(idx)
                if i is None:
                    continue
                got = mpy.read(lm, mpy.window(rgb, crops["boxes"][i]), int(round(t * 1000)))
                if got is not None:
                    found[i], scores[i], matrix[i] = True, got[0], got[1]
            bar.close()
    except VideoError as exc:
        raise EvalRealError(f"clip {clip}: {exc}") from exc
    result = {"found": found, "scores": scores, "matrix": matrix, "key": np.array(key)}
    save_npz(out, **result)
    return result


def au_tracks(values: np.ndarray, card: dict[str, Any]) -> dict[str, np.ndarray]:
    """FACS AU tracks (F,) from bundle outputs: left and right averaged, 0..1."""
    return {au: values[:, cols].mean(1) for au, cols in card["facs"].items()}


def track_metrics(
    values: np.ndarray, mirror: np.ndarray, rolls: np.ndarray, mp: dict[str, np.ndarray],
    card: dict[str, Any],
) -> dict[str, Any]:  # fmt: skip
    """The metrics of one person in one clip (module docstring)."""
    names = list(card["outputs"])
    ok = mp["found"]
    names_mp = mpy.blendshape_names()
    proxy = mpy.proxies(mp["scores"][ok], names_mp)
    ours = au_tracks(values[ok], card)
    au_r = {
        au: round(pearson_r(ours[au], proxy[au]), 3)
        for au in mpy.PROXIES
        if au in ours and proxy[au].std() >= PROXY_MIN_STD
    }
    pose = mpy.head_pose(mp["matrix"][ok])
    col = {k: names.index(f"head_{k}") for k in ("yaw", "pitch", "roll")}
    in_crop_roll = values[ok, col["roll"]] - rolls[ok]
    pose_r = {  # MediaPipe reads an upright window of the frame: its roll is the image's
        "yaw": pearson_r(values[ok, col["yaw"]], pose[:, 0]),
        "pitch": pearson_r(values[ok, col["pitch"]], pose[:, 1]),
        "roll": pearson_r(values[ok, col["roll"]], pose[:, 2]),
        # what the network itself reads: the roll left in the aligned crop
        "roll_in_crop": pearson_r(in_crop_roll, pose[:, 2] - rolls[ok]),
    }
    au_cols = [i for i, n in enumerate(names) if n.startswith("AU")]
    balance = {}
    for au, base in mpy.SIDED.items():
        left, right = mpy.sided(mp["scores"][ok], names_mp, au)
        sym = (np.minimum(left, right) > SYMMETRIC[0]) & (np.abs(left - right) < SYMMETRIC[1])
        if sym.sum() >= 5:
            li, ri = names.index(f"{au}_L"), names.index(f"{au}_R")
            gap = np.abs(values[ok][sym, li] - values[ok][sym, ri])
            balance[au] = {"frames": int(sym.sum()), "mean_gap": round(float(gap.mean()), 3),
                           "proxy": base}  # fmt: skip
    gap = np.abs(values - mirror)
    return {
        "frames": int(len(values)), "mediapipe_found": int(ok.sum()),
        "au_r": au_r, "mean_au_r": round(float(np.mean(list(au_r.values()))), 3) if au_r else None,
        "pose_r": {k: round(v, 3) for k, v in pose_r.items()},
        "mirror": {
            "mean_au_diff": round(float(gap[:, au_cols].mean()), 3),
            "yaw_deg": round(float(gap[:, col["yaw"]].mean()), 2),
            "roll_deg": round(float(gap[:, col["roll"]].mean()), 2),
            # r of yaw against the flip's own yaw: -1 when yaw flips sign with the image
            "yaw_r_with_flip": round(pearson_r(values[:, col["yaw"]], -mirror[:, col["yaw"]]), 3),
        },
        "symmetric_balance": balance,
    }  # fmt: skip


def evaluate(
    bundle: ModelBundle, rfs: RealFaceSet, media: Path, cache: Path, task: Path,
    split: str = "heldout", clips: list[str] | None = None,
) -> dict[str, Any]:  # fmt: skip
    """Metrics per (clip, person) of the split and their means."""
    spec = load_spec()
    if bundle.card["spec_hash"] != spec.hash():
        raise EvalRealError(f"bundle {bundle.path} was trained for another rig spec")
    pairs = split_clips(rfs, split, clips)
    if not pairs:
        raise EvalRealError(f"the {split} split has no clip in {clips}")
    size = bundle.input.size
    build(rfs, media, cache, (size,), sorted({c for c, _ in pairs}))
    tracks = {}
    for clip, person in pairs:
        crops = load_crops(cache, size, clip, person)
        mp = yardstick(media, cache, rfs, clip, person, crops, task)
        values, presence = bundle.read(crops["crops"], 64, crop_rolls=crops["rolls"])
        flipped = bundle.run(
            np.ascontiguousarray(crops["crops"][:, :, ::-1]), 64, crop_rolls=-crops["rolls"]
        )
        mirror = spec.mirrored(flipped)  # the flip's reading, sides swapped back
        m = track_metrics(values, mirror, crops["rolls"], mp, bundle.card)
        if presence is not None:  # what the add-on keys: its quality gate drops the rest
            keep = presence >= QualityConfig().min_presence
            kept = {**mp, "found": mp["found"] & keep}
            k = track_metrics(values, mirror, crops["rolls"], kept, bundle.card)
            m["kept_by_presence"] = {
                "fraction": round(float(keep.mean()), 3), "mediapipe_found": k["mediapipe_found"],
                "mean_au_r": k["mean_au_r"], "pose_r": k["pose_r"],
            }  # fmt: skip
        tracks[f"{clip}/{person}"] = m
        log.info("%s %s: mean AU r %s", clip, person, tracks[f"{clip}/{person}"]["mean_au_r"])
    footage = {
        c: {
            "package": rfs.packages[rfs.clips[c].package].spec,
            "package_licence": rfs.packages[rfs.clips[c].package].licence,
            "terms": rfs.clips[c].terms,
            "use": "evaluation only",
        }
        for c in sorted({c for c, _ in pairs})
    }
    return {
        "bundle": str(bundle.path), "split": split, "tracks": tracks, "mean": _means(tracks),
        "footage": footage,
    }  # fmt: skip


def _means(tracks: dict[str, Any]) -> dict[str, Any]:
    ts = list(tracks.values())
    mean = lambda xs: round(float(np.mean(xs)), 3) if xs else None  # noqa: E731
    return {
        "mean_au_r": mean([t["mean_au_r"] for t in ts if t["mean_au_r"] is not None]),
        "pose_r": {k: mean([t["pose_r"][k] for t in ts]) for k in ts[0]["pose_r"]} if ts else {},
        "mirror_mean_au_diff": mean([t["mirror"]["mean_au_diff"] for t in ts]),
        **(
            {"kept_by_presence_mean_au_r": mean([t["kept_by_presence"]["mean_au_r"] for t in ts])}
            if ts and all("kept_by_presence" in t for t in ts)
            else {}
        ),
    }


def table(result: dict[str, Any]) -> str:
    aus = sorted({a for t in result["tracks"].values() for a in t["au_r"]},
                 key=lambda a: int(a[2:]))  # fmt: skip
    head = ["track", "frames (MP found)", "mean AU r", "yaw r", "pitch r", "roll r",
            "mirror AU diff", *aus]  # fmt: skip
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    for name, t in result["tracks"].items():
        cells = [name, f"{t['frames']} ({t['mediapipe_found']})", str(t["mean_au_r"])]
        cells += [str(t["pose_r"][k]) for k in ("yaw", "pitch", "roll")]
        cells += [str(t["mirror"]["mean_au_diff"])]
        cells += [str(t["au_r"].get(a, "-")) for a in aus]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m ml.eval.real", description=__doc__.split("\n\n")[0]
    )
    ap.add_argument("--bundle", type=Path, default=DEFAULT_BUNDLE)
    ap.add_argument("--split", choices=("heldout", "train", "all"), default="heldout")
    ap.add_argument("--clips", nargs="+", default=None, help="only these clips of the split")
    ap.add_argument("--set", type=Path, default=SET_FILE, help="the set's definition")
    ap.add_argument("--media", type=Path, default=None, help="default: $AURT_CACHE/real_media")
    ap.add_argument("--cache", type=Path, default=None, help="default: $AURT_CACHE/real_faces")
    ap.add_argument("--task", type=Path, default=None, help="face_landmarker.task (fetched)")
    ap.add_argument("--out", type=Path, default=None, help="write the result as JSON here")
    ap.add_argument(
        "--write-card", action="store_true",
        help="store the means per track in the bundle's model card (evaluation_real_video)",
    )  # fmt: skip
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        bundle = ModelBundle(args.bundle, device="cpu")
    except BundleError as exc:
        raise EvalRealError(str(exc)) from exc
    task = args.task or mpy.fetch()
    media, cache = args.media or cache_dir("real_media"), args.cache or cache_dir("real_faces")
    result = evaluate(bundle, load_set(args.set), media, cache, task, args.split, args.clips)
    print(table(result))
    m = result["mean"]
    print(f"mean over tracks: AU r {m['mean_au_r']}, pose r {m['pose_r']}, "
          f"mirror AU diff {m['mirror_mean_au_diff']}")  # fmt: skip
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2) + "\n")
    if args.write_card:
        write_card(bundle.path, result)
        print(f"wrote evaluation_real_video into {bundle.path / CARD_FILE}")
    return 0


def card_entry(result: dict[str, Any]) -> dict[str, Any]:
    """What a model card keeps of an evaluation: the date, the method, each track's
    headline numbers and the means (the per-AU r stay in the full JSON)."""
    return {
        "measured": date.today().isoformat(),
        "split": result["split"],
        "yardstick": "MediaPipe FaceLandmarker blendshape proxies and head transform "
        "(ml/eval/real.py, ml/eval/mediapipe_yardstick.py)",
        "tracks": {
            k: {
                key: t[key]
                for key in (
                    "frames",
                    "mediapipe_found",
                    "mean_au_r",
                    "au_r",
                    "pose_r",
                    "mirror",
                    "symmetric_balance",
                    "kept_by_presence",
                )
                if key in t
            }
            for k, t in result["tracks"].items()
        },  # fmt: skip
        "mean": result["mean"],
        "footage": result.get("footage", {}),
    }


def write_card(bundle: Path, result: dict[str, Any]) -> None:
    path = bundle / CARD_FILE
    card = json.loads(path.read_text())
    card["evaluation_real_video"] = card_entry(result)
    part = path.with_name(f".{CARD_FILE}.part")
    part.write_text(json.dumps(card, indent=2) + "\n")
    part.replace(path)


if __name__ == "__main__":
    sys.exit(exit_on_error("python -m ml.eval.real", main))
