"""Contact sheets of the face rig: the base face and every AU at full intensity, and
random identities.

    python -m rigs.contact_sheet --out out/contact_sheets
    blender -b -P rigs/contact_sheet.py -- --out out/contact_sheets
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a Blender script: make `rigs` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import bpy
import cv2
import numpy as np

from rigs.builder import build_face_rig, set_params
from rigs.render_setup import render_array, setup_render
from rigs.spec import RigSpec, load_spec

log = logging.getLogger(__name__)


def _tile(img: np.ndarray, caption: str) -> np.ndarray:
    out = img.copy()
    cv2.rectangle(out, (0, out.shape[0] - 18), (out.shape[1], out.shape[0]), (0, 0, 0), -1)
    cv2.putText(
        out,
        caption,
        (4, out.shape[0] - 5),
        cv2.FONT_HERSHEY_SIMPLEX,
        0.42,
        (255, 255, 255),
        1,
        cv2.LINE_AA,
    )
    return out


def _grid(tiles: list[np.ndarray], cols: int) -> np.ndarray:
    h, w, _ = tiles[0].shape
    rows = -(-len(tiles) // cols)
    sheet = np.full((rows * h, cols * w, 3), 255, dtype=np.uint8)
    for i, t in enumerate(tiles):
        r, c = divmod(i, cols)
        sheet[r * h : (r + 1) * h, c * w : (c + 1) * w] = t
    return sheet


def au_sheet(scene: bpy.types.Scene, rig: bpy.types.Object, spec: RigSpec) -> list[np.ndarray]:
    """Base face, then each AU parameter alone at its maximum (AD30 at both ends)."""
    tiles = [_tile(render_array(scene), "base")]
    for p in spec.group("au"):
        for value in (p.max, p.min) if p.min < 0 else (p.max,):
            set_params(rig, {p.name: value})
            tiles.append(_tile(render_array(scene), f"{p.name}={value:g}"))
            set_params(rig, {p.name: p.default})
            log.info("rendered %s", p.name)
    return tiles


def identity_sheet(
    scene: bpy.types.Scene, rig: bpy.types.Object, spec: RigSpec, count: int, seed: int
) -> list[np.ndarray]:
    """Random identities (uniform parameters) with a random brow style, neutral expression."""
    rng = np.random.default_rng(seed)
    tiles = []
    for k in range(count):
        values = {p.name: float(rng.uniform(p.min, p.max)) for p in spec.group("identity")}
        style = int(rng.integers(0, len(spec.brow_styles)))
        set_params(rig, {**values, "brow_style": style})
        tiles.append(_tile(render_array(scene), f"id {k} {spec.brow_styles[style]}"))
    set_params(rig, {p.name: p.default for p in spec.params})
    return tiles


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[sys.argv.index("--") + 1 :] if argv is None and "--" in sys.argv else argv
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=Path("out/contact_sheets"))
    ap.add_argument("--size", type=int, default=192, help="tile size in pixels")
    ap.add_argument("--identities", type=int, default=24)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--samples", type=int, default=16, help="Cycles samples per tile")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    args.out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    bpy.ops.wm.read_factory_settings(use_empty=True)
    spec = load_spec()
    rig = build_face_rig()
    scene = bpy.context.scene
    if scene is None:
        raise RuntimeError("Blender has no active scene")
    setup_render(scene, args.size, args.samples)
    for name, tiles in (
        ("aus.png", au_sheet(scene, rig, spec)),
        ("identities.png", identity_sheet(scene, rig, spec, args.identities, args.seed)),
    ):
        path = args.out / name
        cv2.imwrite(str(path), cv2.cvtColor(_grid(tiles, 8), cv2.COLOR_RGB2BGR))
        print(f"wrote {path} ({len(tiles)} tiles)")
    print(f"done in {time.perf_counter() - start:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
