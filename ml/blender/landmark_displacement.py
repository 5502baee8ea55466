"""How far each AU and identity parameter moves the 68 landmarks in the aligned crop (runs
inside Blender, like ml/render_pairs.py).

    python ml/blender/landmark_displacement.py -- [--size 128] [--out table.md]

From the base face (every parameter at its default), each AU goes to 1 (FACS intensity 5)
and each identity parameter one standard deviation of its training draw either way (the
mean of the two). Printed per parameter: the largest landmark displacement and the mean
of the five largest, in crop pixels and in inter-ocular distances (IOD). A regressor has to
resolve an AU's displacement against identity differences of the same size.
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a Blender script: make the repo importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import argparse

import bpy
import numpy as np

from au_retarget_addon.core.align import transform_points
from ml.render_pairs import PairRenderer
from rigs import RigSpec, load_spec

Row = tuple[str, str, float, float, float]


def displacements(spec: RigSpec, size: int) -> list[Row]:
    """(group, parameter, max px, top-5 mean px, max IOD) per AU and identity parameter,
    largest first; last, every identity parameter together (root sum of squares of their
    displacements per landmark: the spread of a landmark over random faces)."""
    renderer = PairRenderer(spec, size, 1)

    def landmarks(v: np.ndarray) -> np.ndarray:
        _, xy, _, m = renderer.place(v, 0, 0, randomize=False)
        return transform_points(m, xy[renderer.mesh.lm68])

    base = spec.defaults()
    ref = landmarks(base)
    iod = float(np.linalg.norm(ref[36:42].mean(0) - ref[42:48].mean(0)))
    rows: list[Row] = []
    together = np.zeros(len(ref))
    for p in spec.params:
        if p.group not in ("au", "identity"):
            continue
        if p.group == "au":
            moved = [(p.index, 1.0)]
        else:
            sd = (p.max - p.min) / np.sqrt(12.0)  # of the uniform draw
            moved = [(p.index, p.default + sd), (p.index, p.default - sd)]
        d = np.zeros(len(ref))
        for i, value in moved:
            v = base.copy()
            v[i] = value
            d += np.linalg.norm(landmarks(v) - ref, axis=1) / len(moved)
        if p.group == "identity":
            together += d**2
        rows.append(_row(p.group, p.name, d, iod))
    together = np.sqrt(together)
    return sorted(rows, key=lambda r: -r[2]) + [_row("identity", "all together", together, iod)]


def _row(group: str, name: str, d: np.ndarray, iod: float) -> Row:
    return (group, name, float(d.max()), float(np.sort(d)[-5:].mean()), float(d.max()) / iod)


def table(rows: list[Row], size: int) -> str:
    lines = [
        f"| parameter ({size} px crop) | group | max px | top-5 mean px | max IOD |",
        "| --- | --- | --- | --- | --- |",
    ]
    lines += [f"| {n} | {g} | {mx:.2f} | {top:.2f} | {iod:.3f} |" for g, n, mx, top, iod in rows]
    return "\n".join(lines) + "\n"


def main() -> int:
    argv = sys.argv[sys.argv.index("--") + 1 :] if "--" in sys.argv else []
    ap = argparse.ArgumentParser(prog="landmark_displacement", description=__doc__.split("\n")[0])
    ap.add_argument("--size", type=int, default=128, help="aligned crop size")
    ap.add_argument("--out", type=Path, help="also write the table here")
    args = ap.parse_args(argv)
    bpy.ops.wm.read_factory_settings(use_empty=True)
    text = table(displacements(load_spec(), args.size), args.size)
    print(text)
    if args.out is not None:
        args.out.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
