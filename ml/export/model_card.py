"""Ship a bundle as the add-on's default model: copy it to the add-on with a completed model
card (training data and time, evaluations, tracking speed, licences, known limits).

    python -m ml.export.model_card --bundle runs/recipe/bundle_int8 --work data/recipe \
        --runs runs/recipe --out au_retarget_addon/models/default \
        --limit "Trained on renders of one rig and one real person" ...

The tracking speed is measured here, on this machine, with the tracking benchmark
(`python -m au_retarget_addon.core bench`) on --video.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
from pathlib import Path
from typing import Any

import numpy as np

from au_retarget_addon.core.bundle import CARD_FILE, MODEL_FILE, ModelBundle
from ml.data.real_face_set import provenance
from ml.errors import MLError, exit_on_error
from ml.export.atomic import atomic_folder


class ModelCardError(MLError, RuntimeError):
    """The bundle or the recipe's outputs are missing (names the file)."""


def _json(path: Path) -> Any:
    return json.loads(path.read_text()) if path.is_file() else None


def training_facts(work: Path, runs: Path) -> dict[str, Any]:
    """Data sizes and stage times from a recipe's work and runs folders."""
    from ml.data.pairs_layout import list_pairs

    facts: dict[str, Any] = {}
    for name in ("pairs", "pairs_eval"):
        if (work / name).is_dir():
            facts[f"{name}_count"] = len(list_pairs(work / name))
    for name, key in (("real_faces.npz", "crops"), ("real_labels.npz", "images")):
        if (work / name).is_file():
            with np.load(work / name) as z:
                facts[f"{name.split('.')[0]}_count"] = int(len(z[key]))
                if name == "real_faces.npz" and "names" in z.files:
                    # clips of the real-face set: source, package licence, footage terms
                    facts["real_faces_sources"] = provenance(list(z["names"]))
    times = _json(work / "stages" / "seconds.json") or {}
    facts["stage_seconds"] = times
    facts["total_hours"] = round(sum(times.values()) / 3600, 2)
    facts["machine"] = f"{platform.machine()}, {os.cpu_count()} CPU threads"
    for stage in ("parser", "generator", "regressor", "landmark_regressor"):
        summary = _json(runs / stage / "summary.json")
        if summary is not None:
            facts[f"{stage}_steps"] = summary.get("step")
            if "features_s" in summary:  # F's features: computed, or read from the cache
                facts[f"{stage}_features_seconds"] = summary["features_s"]
    generator = _json(runs / "feature_generator" / "summary.json")
    if generator is not None:  # the generator as F sees it, against F's reading of renders
        facts["feature_generator"] = {"steps": generator.get("step"),
                                      "held_out": generator.get("held_out")}  # fmt: skip
    five = _json(runs / "five_losses" / "summary.json")
    if five is not None:  # the five losses on real frames
        facts["five_losses"] = {
            k: five.get(k) for k in ("step", "train_s", "real_frames", "people", "weights")
        }
        facts["real_faces_sources"] = five.get("real_faces_sources")
    facts["parser_evaluation"] = _json(runs / "parser" / "eval.json")
    return facts


def tracking_speed(bundle: Path, video: Path) -> dict[str, Any]:
    from au_retarget_addon.core import bench
    from au_retarget_addon.core.detect import DEFAULT_MODEL_DIR, FaceDetector

    b = ModelBundle(bundle, device="cpu", threads=0)
    result = bench.run(video, b, FaceDetector(DEFAULT_MODEL_DIR), repeats=5)
    return {"video": video.name, **{k: round(v, 3) for k, v in result.items()}}


def ship(
    bundle: Path,
    out: Path,
    work: Path,
    runs: Path,
    video: Path,
    limits: list[str],
    started_from: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Copy `bundle` to `out` (atomically) with the completed card; returns the card."""
    for need in (MODEL_FILE, CARD_FILE):
        if not (bundle / need).is_file():
            raise ModelCardError(f"bundle {bundle} has no {need}")
    card = json.loads((bundle / CARD_FILE).read_text())
    card["training"] = training_facts(work, runs)
    if started_from is not None:  # training went on from another model: its facts, the sum
        card["training"]["started_from"] = started_from
        card["training"]["total_hours"] = round(
            card["training"]["total_hours"] + started_from["total_hours"], 2
        )
    card["tracking_speed"] = tracking_speed(bundle, video)
    card["known_limits"] = limits
    card["size_bytes"] = (bundle / MODEL_FILE).stat().st_size
    with atomic_folder(out, ".tmp_ship_") as tmp:
        shutil.copy2(bundle / MODEL_FILE, tmp / MODEL_FILE)
        (tmp / CARD_FILE).write_text(json.dumps(card, indent=2) + "\n")
    return card


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m ml.export.model_card", description=__doc__.split("\n\n")[0]
    )
    ap.add_argument("--bundle", type=Path, required=True)
    ap.add_argument("--work", type=Path, required=True, help="the recipe's work folder")
    ap.add_argument("--runs", type=Path, required=True, help="the recipe's runs folder")
    ap.add_argument("--out", type=Path, default=Path("au_retarget_addon/models/default"))
    ap.add_argument("--video", type=Path, default=Path("tests/media/single_face.mp4"))
    ap.add_argument("--limit", action="append", default=[], help="a known limit (repeat)")
    continued = ap.add_mutually_exclusive_group()
    continued.add_argument(
        "--start",
        nargs=2,
        type=Path,
        metavar=("WORK", "RUNS"),
        help="the work and runs folders of the recipe this one continued",
    )
    continued.add_argument(
        "--continues",
        type=Path,
        metavar="CARD",
        help="the card of the bundle whose weights training went on from (its training facts)",
    )
    args = ap.parse_args(argv)
    started_from = training_facts(*args.start) if args.start else None
    if args.continues:
        if not args.continues.is_file():
            raise ModelCardError(f"--continues: card {args.continues} does not exist")
        started_from = json.loads(args.continues.read_text()).get("training")
        if not isinstance(started_from, dict) or "total_hours" not in started_from:
            raise ModelCardError(f"--continues: card {args.continues} has no training facts")
    card = ship(args.bundle, args.out, args.work, args.runs, args.video, args.limit, started_from)
    speed = card["tracking_speed"]
    print(f"shipped {args.bundle} to {args.out} ({card['size_bytes'] / 1e6:.1f} MB); "
          f"tracking {speed['fps']:.1f} frames/s on {speed['video']}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(exit_on_error("python -m ml.export.model_card", main))
