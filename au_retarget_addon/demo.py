"""The README's demo, headless: build the face rig, track a video with the add-on's own
operator, save the .blend, and render the rig beside each video frame.

    .venv/bin/python -m au_retarget_addon.demo --video tests/media/single_face.mp4 \\
        --model BUNDLE --out out                       # or: make demo

Writes out/demo.blend, out/demo_preview.mp4 (video | rig, side by side) and
out/demo_sheet.png (every 8th frame). Without --model the add-on's default model is used.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import bpy
import cv2
import numpy as np

from .core.video import VideoReader
from .resources import rigs_module


def _register() -> None:
    """Register the add-on from this source tree unless Blender already has it enabled."""
    if not hasattr(bpy.types.Scene, "aurt"):
        from . import register

        register()


def track(video: Path, model: Path | None, frames: int) -> bpy.types.Object:
    bpy.ops.wm.read_factory_settings(use_empty=True)
    _register()
    scene = bpy.context.scene
    with VideoReader(video) as reader:
        fps = reader.info.fps
    scene.render.fps, scene.render.fps_base = round(fps), round(fps) / fps  # video time = scene
    bpy.ops.aurt.add_face_rig()
    s = scene.aurt
    s.video, s.video_end, s.scene_start = str(video), frames - 1, 1
    if model is not None:
        s.model, s.model_path = "FILE", str(model)
    if bpy.ops.aurt.track_video() != {"FINISHED"}:
        raise RuntimeError(f"tracking {video} failed")
    first, last = (int(f) for f in s.target.animation_data.action.frame_range)
    scene.frame_start, scene.frame_end = first, last
    return s.target


def _label(img: np.ndarray, text: str) -> np.ndarray:
    cv2.putText(img, text, (6, 18), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1, cv2.LINE_AA)
    return img


def preview(video: Path, out: Path, size: int, frames: int) -> tuple[Path, Path]:
    """Video frame | rendered rig for every tracked frame: an MP4 and a PNG sheet."""
    render_setup = rigs_module("render_setup")
    scene = bpy.context.scene
    render_setup.setup_render(scene, size=size, samples=4)
    fps = scene.render.fps / scene.render.fps_base
    mp4, sheet = out / "demo_preview.mp4", out / "demo_sheet.png"
    writer = cv2.VideoWriter(str(mp4), cv2.VideoWriter_fourcc(*"mp4v"), fps, (2 * size, size))
    tiles = []
    try:
        with VideoReader(video) as reader:
            for k, (idx, _t, image) in enumerate(reader.frames(0, frames)):
                scene.frame_set(scene.frame_start + k)
                h, w = image.shape[:2]
                side = min(h, w)  # centre square of the video frame
                crop = image[(h - side) // 2 : (h + side) // 2, (w - side) // 2 : (w + side) // 2]
                left = _label(cv2.resize(crop, (size, size)), f"video {idx}")
                right = _label(render_setup.render_array(scene), f"rig {scene.frame_current}")
                pair = np.hstack([left, right])
                writer.write(cv2.cvtColor(pair, cv2.COLOR_RGB2BGR))
                if k % 8 == 0:
                    tiles.append(pair)
    finally:
        writer.release()
    cols = 2
    rows = [np.hstack(tiles[i : i + cols] + [np.zeros_like(tiles[0])] * (i + cols - len(tiles)))
            for i in range(0, len(tiles), cols)]  # fmt: skip
    cv2.imwrite(str(sheet), cv2.cvtColor(np.vstack(rows), cv2.COLOR_RGB2BGR))
    return mp4, sheet


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m au_retarget_addon.demo", description=__doc__)
    ap.add_argument("--video", type=Path, default=Path("tests/media/single_face.mp4"))
    ap.add_argument("--model", type=Path, help="model bundle folder (default: the add-on's)")
    ap.add_argument("--out", type=Path, default=Path("out"))
    ap.add_argument("--frames", type=int, default=72, help="video frames to track")
    ap.add_argument("--size", type=int, default=256, help="preview height in pixels")
    args = ap.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    try:
        track(args.video.resolve(), args.model.resolve() if args.model else None, args.frames)
    except RuntimeError as exc:
        print(f"demo: error: {exc}", file=sys.stderr)
        return 2
    t1 = time.perf_counter()
    blend = args.out.resolve() / "demo.blend"
    bpy.ops.wm.save_as_mainfile(filepath=str(blend))
    mp4, sheet = preview(args.video, args.out, args.size, args.frames)
    t2 = time.perf_counter()
    print(f"tracked and keyed in {t1 - t0:.1f} s; wrote {blend}")
    print(f"rendered the preview in {t2 - t1:.1f} s; wrote {mp4} and {sheet}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
