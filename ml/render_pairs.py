"""Render training pairs from the face rig (runs inside Blender).

    blender -b -P ml/render_pairs.py -- --count 1000 --out data/pairs
    python ml/render_pairs.py -- --count 1000 --out data/pairs --shard 0/2

Each pair: aligned RGB image, segmentation mask (label ids), 68 + 5 landmarks in crop
pixels, and the parameter vector in spec order. Layout is documented in README.md;
`ml.data.pairs_dataset` reads it. Writes are atomic and a rerun resumes.
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a Blender script: make the repo importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse
import time

import bpy
import cv2
import numpy as np
from mathutils import Vector

from au_retarget_addon.core.align import alignment_matrix, transform_points
from ml.data.pairs_layout import (
    Pair,
    PairsConfig,
    PairsError,
    open_dataset,
    pair_done,
    shard_indices,
    write_pair,
    write_shard_index,
)
from ml.data.raster import rasterize_labels
from ml.data.sampling import AU_MODES, SamplingConfig, sample_params
from rigs import RigSpec, load_spec
from rigs.builder import (
    LABEL_ATTRIBUTE,
    MESH_NAME,
    build_face_rig,
    evaluated_vertices,
    set_params,
)
from rigs.geometry import build_face_mesh, detector_points, render_triangles
from rigs.render_setup import (
    CAMERA_LENS_MM,
    project_depth,
    render_array,
    set_ambient,
    setup_render,
)

# The camera is framed so the aligned crop needs about no rescaling (eye distance).
PAIR_LENS_MM = CAMERA_LENS_MM * 1.16
BACKGROUND = (64, 68, 75)


def _mask_material() -> bpy.types.Material:
    """Emission of label / 255, read from the face attribute: exact ids in a Raw 8-bit render."""
    mat = bpy.data.materials.new("AURT_LabelMask")
    nt = mat.node_tree
    nt.nodes.clear()
    attr = nt.nodes.new("ShaderNodeAttribute")
    attr.attribute_type = "GEOMETRY"
    attr.attribute_name = LABEL_ATTRIBUTE
    scale = nt.nodes.new("ShaderNodeMath")
    scale.operation = "DIVIDE"
    scale.inputs[1].default_value = 255.0
    emit = nt.nodes.new("ShaderNodeEmission")
    out = nt.nodes.new("ShaderNodeOutputMaterial")
    nt.links.new(attr.outputs["Fac"], scale.inputs[0])
    nt.links.new(scale.outputs[0], emit.inputs["Color"])
    nt.links.new(emit.outputs[0], out.inputs["Surface"])
    return mat


def _background(rng: np.random.Generator, size: int, randomize: bool) -> np.ndarray:
    """Flat grey, or a random flat colour, gradient or smooth noise."""
    if not randomize:
        return np.full((size, size, 3), BACKGROUND, np.float32)
    kind = rng.integers(0, 3)
    a, b = rng.uniform(0, 255, 3), rng.uniform(0, 255, 3)
    if kind == 0:
        return np.broadcast_to(a, (size, size, 3)).astype(np.float32)
    if kind == 1:
        t = np.linspace(0, 1, size)[:, None, None]
        g = a * (1 - t) + b * t
        img = np.broadcast_to(g, (size, size, 3))
        return np.ascontiguousarray(img if rng.uniform() < 0.5 else img.transpose(1, 0, 2))
    noise = rng.uniform(0, 255, (size // 8 + 1, size // 8 + 1, 3)).astype(np.float32)
    return cv2.resize(noise, (size, size), interpolation=cv2.INTER_CUBIC).clip(0, 255)


class PairRenderer:
    """Owns the rig scene; renders one aligned pair per parameter vector."""

    def __init__(self, spec: RigSpec, size: int, samples: int) -> None:
        self.spec, self.size, self.samples = spec, size, samples
        scene = bpy.context.scene
        if scene is None:
            raise PairsError("Blender has no active scene to render pairs in")
        self.scene: bpy.types.Scene = scene
        self.rig = build_face_rig()
        self.camera = setup_render(self.scene, size, samples, lens=PAIR_LENS_MM)
        self.mask_mat = _mask_material()
        self.mesh = build_face_mesh(spec)
        self.last_matrix = np.eye(2, 3)
        self.tris, self.tri_labels, self.cullable = render_triangles(self.mesh)
        self.key = bpy.data.objects["AURT_Key"]
        self.skin = bpy.data.materials[f"{MESH_NAME}_skin"]
        self.base = {
            "key_loc": self.key.location.to_tuple(),
            "cam_loc": self.camera.location.to_tuple(),
            "cam_rot": tuple(self.camera.rotation_euler[i] for i in range(3)),
            "skin": tuple(
                self.skin.node_tree.nodes["Principled BSDF"].inputs["Base Color"].default_value
            ),
        }

    def _appearance(self, rng: np.random.Generator, randomize: bool) -> None:
        key, cam = self.key, self.camera
        key.location, cam.location = self.base["key_loc"], self.base["cam_loc"]
        cam.rotation_euler = self.base["cam_rot"]
        key.data.color = (1.0, 1.0, 1.0)
        skin = np.array(self.base["skin"])
        if randomize:
            az, el = np.radians(rng.uniform(-70, 70)), np.radians(rng.uniform(-15, 60))
            key.location = (
                6.5 * np.sin(az) * np.cos(el),
                -6.5 * np.cos(az) * np.cos(el),
                6.5 * np.sin(el),
            )
            key.rotation_euler = (
                Vector((-np.asarray(key.location)).tolist()).to_track_quat("-Z", "Y").to_euler()
            )
            key.data.color = tuple(rng.uniform(0.75, 1.0, 3).tolist())
            skin[:3] = skin[:3] * rng.uniform(0.35, 1.25) * rng.uniform(0.9, 1.1, 3)
            cam.location = (
                self.base["cam_loc"][0] + rng.uniform(-0.06, 0.06),
                self.base["cam_loc"][1],
                self.base["cam_loc"][2] + rng.uniform(-0.06, 0.06),
            )
            cam.rotation_euler[1] = np.radians(rng.uniform(-2.0, 2.0))
        else:
            key.rotation_euler = (
                Vector((-np.asarray(key.location)).tolist()).to_track_quat("-Z", "Y").to_euler()
            )
        bsdf = self.skin.node_tree.nodes["Principled BSDF"]
        bsdf.inputs["Base Color"].default_value = tuple(np.clip(skin, 0, 1).tolist())
        set_ambient(self.skin)

    def _mask(self) -> np.ndarray:
        scene, layer = self.scene, bpy.context.view_layer
        cy, vs = scene.cycles, scene.view_settings
        r = scene.render
        old = (
            cy.samples,
            cy.filter_width,
            vs.view_transform,
            r.film_transparent,
            r.dither_intensity,
        )
        try:
            cy.samples, cy.filter_width, vs.view_transform = 1, 0.01, "Raw"
            r.dither_intensity = 0.0  # dither noise would change label ids
            scene.render.film_transparent = False
            layer.material_override = self.mask_mat
            scene.world.node_tree.nodes["Background"].inputs["Strength"].default_value = 0.0
            return render_array(scene)[..., 0]
        finally:
            cy.samples, cy.filter_width, vs.view_transform = old[:3]
            r.film_transparent, r.dither_intensity = old[3], old[4]
            layer.material_override = None
            scene.world.node_tree.nodes["Background"].inputs["Strength"].default_value = 1.0

    def place(
        self, params: np.ndarray, seed: int, index: int, randomize: bool
    ) -> tuple[np.random.Generator, np.ndarray, np.ndarray, np.ndarray]:
        """Pose the rig, camera and lights for pair `index` without rendering:
        (the pair's generator, for what it draws next; vertex image xy; depth; the
        alignment matrix)."""
        rng = np.random.default_rng(np.random.SeedSequence([seed, index, 1]))
        set_params(self.rig, params, self.spec)
        self._appearance(rng, randomize)
        bpy.context.view_layer.update()
        xy, depth = project_depth(self.scene, evaluated_vertices(self.rig))
        # crop as the tracker crops real faces: at the detector's idea of the 5 points
        m = self.last_matrix = alignment_matrix(detector_points(self.mesh.lm5_of(xy)), self.size)
        return rng, xy, depth, m

    def render(self, params: np.ndarray, seed: int, index: int, randomize: bool) -> Pair:
        rng, xy, depth, m = self.place(params, seed, index, randomize)
        self.scene.render.film_transparent = True
        rgba = render_array(self.scene, alpha=True).astype(np.float32)
        xy = transform_points(m, xy)  # crop pixels: the mask is rasterised there, exactly
        mask = rasterize_labels(xy, depth, self.tris, self.tri_labels, self.size, self.cullable)
        frame = np.ones(rgba.shape[:2], np.uint8)  # only what the camera saw, like the image
        mask *= cv2.warpAffine(frame, m, (self.size, self.size), flags=cv2.INTER_NEAREST)
        crop = cv2.warpAffine(rgba, m, (self.size, self.size), flags=cv2.INTER_LINEAR)
        alpha = crop[..., 3:] / 255.0
        bg = _background(rng, self.size, randomize)
        image = (crop[..., :3] * alpha + bg * (1 - alpha)).round().clip(0, 255).astype(np.uint8)
        return Pair(image, mask, xy[self.mesh.lm68], self.mesh.lm5_of(xy), params)

    def cycles_mask(self) -> np.ndarray:
        """The last pair's label mask rendered by Cycles (a cross-check of the raster mask)."""
        full = self._mask()
        return cv2.warpAffine(
            full, self.last_matrix, (self.size, self.size), flags=cv2.INTER_NEAREST
        )


def parse_args(argv: list[str]) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="render_pairs", description="Render rig training pairs.")
    ap.add_argument("--count", type=int, required=True, help="pairs in the whole dataset")
    ap.add_argument("--out", type=Path, required=True, help="dataset folder")
    ap.add_argument("--size", type=int, default=128, help="aligned crop size (64..512)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--shard", default="0/1", help="K/N: render part K of N (disjoint)")
    ap.add_argument("--shard-size", type=int, default=1000, help="pairs per shard folder")
    ap.add_argument("--au-mode", choices=AU_MODES, default="uniform")
    ap.add_argument("--randomize", action="store_true", help="appearance randomisation")
    ap.add_argument("--samples", type=int, default=2, help="Cycles samples per image")
    args = ap.parse_args(argv)
    if args.count < 1:
        ap.error("--count must be at least 1")
    if args.shard_size < 1 or args.samples < 1:
        ap.error("--shard-size and --samples must be at least 1")
    if not 64 <= args.size <= 512:
        ap.error(f"--size {args.size} is outside 64..512")
    try:
        k, n = (int(x) for x in args.shard.split("/"))
    except ValueError:
        ap.error(f"--shard {args.shard!r} is not K/N")
    if not 0 <= k < n:
        ap.error(f"--shard {args.shard}: need 0 <= K < N")
    args.shard_k, args.shard_n = k, n
    return args


def _progress(done: int, total: int, start: float, rendered: int) -> None:
    rate = rendered / max(time.perf_counter() - start, 1e-9)
    left = (total - done) / rate if rate > 0 else float("inf")
    print(f"\r{done}/{total} pairs  {rate:.1f} pairs/s  {left:.0f} s left", end="", flush=True)


def run(args: argparse.Namespace) -> int:
    spec = load_spec()
    cfg = PairsConfig(
        count=args.count,
        size=args.size,
        seed=args.seed,
        shard_size=args.shard_size,
        au_mode=args.au_mode,
        randomize=args.randomize,
        samples=args.samples,
        spec_hash=spec.hash(),
    )
    open_dataset(args.out, cfg)
    sampling = SamplingConfig(au_mode=args.au_mode)
    renderer = PairRenderer(spec, args.size, args.samples)
    todo = shard_indices(cfg, args.shard_k, args.shard_n)
    start, rendered = time.perf_counter(), 0
    total = sum(len(r) for r in todo.values())
    done = sum(pair_done(args.out, cfg, i) for r in todo.values() for i in r)
    for shard, indices in todo.items():
        for i in indices:
            if pair_done(args.out, cfg, i):
                continue
            params = sample_params(spec, args.seed, i, sampling)
            write_pair(args.out, cfg, i, renderer.render(params, args.seed, i, args.randomize))
            rendered, done = rendered + 1, done + 1
            _progress(done, total, start, rendered)
        write_shard_index(args.out, cfg, shard)
    print(f"\nrendered {rendered} pairs into {args.out}")
    return 0


def main() -> int:
    argv = sys.argv[sys.argv.index("--") + 1 :] if "--" in sys.argv else []
    args = parse_args(argv)
    bpy.ops.wm.read_factory_settings(use_empty=True)
    try:
        return run(args)
    except PairsError as exc:
        print(f"render_pairs: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
