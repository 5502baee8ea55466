"""Does each rig AU read as that AU to a real-face model? Renders of the rig read by MediaPipe
FaceLandmarker's blendshapes, mapped to FACS AU proxies (ml/eval/mediapipe_yardstick.py).

    .venv/bin/python ml/blender/rig_fidelity.py -- [--identities 6] [--random 300] [--out t.md]

Three measurements, all on 256 px aligned crops as the pairs are rendered:

1. The response matrix: on the base face and random identities, at a frontal and a turned
   head pose, each FACS AU alone at full intensity (left and right together) minus the same
   face's neutral render. Per AU: the increase of its own proxy, its rank among the 20 AU
   proxies (1 = the strongest response) and the three strongest.
2. Random FACS-mode renders over the whole training pose range and random identities: the
   Pearson r per AU between the rig's intensity (mean of both sides) and its proxy.
3. The face-found rate of those renders, overall, within |yaw| <= 30 and |pitch| <= 20
   degrees, and outside.

mediapipe is a training extra (`make setup`); the model comes from `make weights`.
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a Blender script: make the repo importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import argparse
import json
from dataclasses import asdict, dataclass, field
from typing import Any

import bpy
import numpy as np

from ml.data.sampling import SamplingConfig, sample_params
from ml.errors import exit_on_error
from ml.eval import mediapipe_yardstick as mpy
from ml.eval.metrics import pearson_r
from ml.render_pairs import PairRenderer
from rigs import RigSpec, load_spec

SIZE = 256
# the head poses of the response matrix: (yaw, pitch) degrees
POSES = ((0.0, 0.0), (20.0, -10.0))
# AUs whose proxies share blendshapes (MediaPipe has one eyeSquint, and AU25's proxy holds
# AU26's jawOpen): each may rank second, behind its partner only
_PAIRS = (("AU6", "AU7"), ("AU23", "AU24"), ("AU25", "AU26"))
PARTNER = {a: b for pair in _PAIRS for a, b in (pair, pair[::-1])}
# the head poses within which every render should read as a face: |yaw|, |pitch| degrees
FRONTAL = (30.0, 20.0)
SEED = 20261206


@dataclass
class AURow:
    au: str
    increase: float  # own proxy, AU render minus neutral, mean over faces and poses
    rank: int  # of the own proxy among all proxies' mean increases (1 = strongest)
    top: list[tuple[str, float]]  # the three strongest proxies
    faces: int  # (identity, pose) cells where both renders were read

    @property
    def reads_right(self) -> bool:
        behind_partner = self.rank == 2 and self.top[0][0] == PARTNER.get(self.au)
        return self.increase >= 0.2 and (self.rank == 1 or behind_partner)


@dataclass
class Fidelity:
    matrix: list[AURow] = field(default_factory=list)
    random_r: dict[str, float] = field(default_factory=dict)
    random_n: int = 0
    found: float = 0.0
    found_frontal: float = 0.0
    found_wide: float = 0.0
    frontal_n: int = 0
    misses: list[dict[str, float]] = field(default_factory=list)

    @property
    def mean_r(self) -> float:
        return float(np.mean(list(self.random_r.values()))) if self.random_r else float("nan")

    @property
    def right(self) -> int:
        return sum(r.reads_right for r in self.matrix)


class Reader:
    """MediaPipe's AU proxies of rendered crops, in IMAGE mode (each render on its own)."""

    def __init__(self, task: Path) -> None:
        self.lm = mpy.landmarker(task, video=False)
        self.names = mpy.blendshape_names()

    def __call__(self, rgb: np.ndarray) -> dict[str, float] | None:
        got = mpy.read(self.lm, rgb, None)
        if got is None:
            return None
        return {au: float(v) for au, v in mpy.proxies(got[0], self.names).items()}


def _identity(spec: RigSpec, k: int) -> np.ndarray:
    """Identity k: 0 is the base face, others a seeded random draw; AUs and pose neutral."""
    v = spec.defaults().astype(np.float32)
    if k > 0:
        drawn = sample_params(spec, SEED, k, SamplingConfig(au_mode="sparse"))
        for p in spec.group("identity"):
            v[p.index] = drawn[p.index]
    return v


def response_matrix(
    renderer: PairRenderer,
    read: Reader,
    spec: RigSpec,
    identities: int,
    aus: list[str] | None = None,
) -> list[AURow]:
    """One row per AU with a proxy (only `aus` when given); AUs without one are not rendered."""
    groups = {
        au: i
        for au, i in spec.facs_groups().items()
        if au in mpy.PROXIES and (aus is None or au in aus)
    }
    deltas: dict[str, list[dict[str, float]]] = {au: [] for au in groups}
    for k in range(identities):
        for yaw, pitch in POSES:
            v = _identity(spec, k)
            v[spec.param("head_yaw").index], v[spec.param("head_pitch").index] = yaw, pitch
            neutral = read(renderer.render(v, SEED, 0, randomize=False).image)
            for au, idx in groups.items():
                w = v.copy()
                w[idx] = [spec.params[i].max for i in idx]
                moved = read(renderer.render(w, SEED, 0, randomize=False).image)
                if neutral is not None and moved is not None:
                    deltas[au].append({a: moved[a] - neutral[a] for a in neutral})
    rows = []
    for au in groups:
        if not deltas[au]:
            continue
        mean = {a: float(np.mean([d[a] for d in deltas[au]])) for a in deltas[au][0]}
        ranked = sorted(mean.items(), key=lambda kv: -kv[1])
        own = mean[au]
        rank = 1 + sum(val > own for a, val in mean.items() if a != au)
        rows.append(AURow(au, own, rank, ranked[:3], len(deltas[au])))
    return rows


def random_renders(
    renderer: PairRenderer, read: Reader, spec: RigSpec, n: int, out: Fidelity
) -> None:
    groups = {au: idx for au, idx in spec.facs_groups().items() if au in mpy.PROXIES}
    cfg = SamplingConfig(au_mode="facs")
    iy, ip = spec.param("head_yaw").index, spec.param("head_pitch").index
    rig: list[list[float]] = []
    seen: list[list[float]] = []
    frontal = frontal_found = wide = wide_found = 0
    for i in range(n):
        v = sample_params(spec, SEED + 1, i, cfg)
        got = read(renderer.render(v, SEED + 1, i, randomize=True).image)
        inside = bool(abs(v[iy]) <= FRONTAL[0] and abs(v[ip]) <= FRONTAL[1])
        frontal += inside
        wide += not inside
        if got is None:
            out.misses.append({"yaw": float(v[iy]), "pitch": float(v[ip])})
            continue
        frontal_found += inside
        wide_found += not inside
        rig.append([float(np.mean(v[idx])) for idx in groups.values()])
        seen.append([got[au] for au in groups])
    a, b = np.array(rig), np.array(seen)
    for j, au in enumerate(groups):
        out.random_r[au] = pearson_r(a[:, j], b[:, j])
    out.random_n = n
    out.found = len(rig) / max(n, 1)
    out.found_frontal = frontal_found / max(frontal, 1)
    out.found_wide = wide_found / max(wide, 1)
    out.frontal_n = frontal


def measure(
    spec: RigSpec, task: Path, identities: int, n_random: int, aus: list[str] | None = None
) -> Fidelity:
    bpy.ops.wm.read_factory_settings(use_empty=True)
    renderer = PairRenderer(spec, SIZE, 1)
    read = Reader(task)
    out = Fidelity(matrix=response_matrix(renderer, read, spec, identities, aus))
    if n_random:
        random_renders(renderer, read, spec, n_random, out)
    return out


def report(f: Fidelity, identities: int) -> str:
    cells = f"{identities} faces x {len(POSES)} poses"
    lines = [
        f"Response matrix ({cells}; own proxy increase, its rank among 20 proxies):",
        "",
        "| rig AU | own proxy increase | rank | reads right | strongest three |",
        "| --- | --- | --- | --- | --- |",
    ]
    for r in f.matrix:
        top = ", ".join(f"{a} {v:+.2f}" for a, v in r.top)
        ok = "yes" if r.reads_right else "no"
        lines.append(f"| {r.au} | {r.increase:+.3f} | {r.rank} | {ok} | {top} |")
    pairs = ", ".join(f"{a}/{b}" for a, b in PARTNER.items() if a < b)
    lines += ["", f"Reads right: {f.right} of {len(f.matrix)} AUs (own proxy first, or second "
              f"behind its partner for {pairs}; increase >= 0.2)."]  # fmt: skip
    if f.random_n:
        rs = ", ".join(f"{au} {r:+.2f}" for au, r in f.random_r.items())
        lines += [
            "",
            f"Random FACS-mode renders ({f.random_n}): mean r {f.mean_r:.3f} ({rs})",
            f"Face found: {f.found:.1%} of all, {f.found_frontal:.1%} of the {f.frontal_n} "
            f"within |yaw| <= {FRONTAL[0]:g} and |pitch| <= {FRONTAL[1]:g}, "
            f"{f.found_wide:.1%} of the rest",
        ]
    return "\n".join(lines) + "\n"


def as_json(f: Fidelity) -> dict[str, Any]:
    d = asdict(f)
    d.update(mean_r=f.mean_r, reads_right=f.right)
    return d


def main() -> int:
    argv = sys.argv[sys.argv.index("--") + 1 :] if "--" in sys.argv else sys.argv[1:]
    ap = argparse.ArgumentParser(prog="rig_fidelity", description=__doc__.split("\n")[0])
    ap.add_argument("--identities", type=int, default=6, help="base face + random ones")
    ap.add_argument("--random", type=int, default=300, help="random FACS-mode renders")
    ap.add_argument("--aus", nargs="+", help="only these AUs in the matrix (e.g. AU15 AU17)")
    ap.add_argument("--task", type=Path, default=None, help="face_landmarker.task")
    ap.add_argument("--out", type=Path, help="also write the report here")
    ap.add_argument("--json", type=Path, help="the numbers as JSON")
    args = ap.parse_args(argv)
    if args.identities < 1 or args.random < 0:
        ap.error("--identities must be >= 1 and --random >= 0")
    spec = load_spec()
    unknown = sorted(set(args.aus or ()) - (set(spec.facs_groups()) & set(mpy.PROXIES)))
    if unknown:
        ap.error(f"no rig AU with a proxy named {', '.join(unknown)}")
    task = args.task or mpy.default_task()
    f = measure(spec, task, args.identities, args.random, args.aus)
    text = report(f, args.identities)
    print(text)
    if args.out is not None:
        args.out.write_text(text)
    if args.json is not None:
        args.json.write_text(json.dumps(as_json(f), indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(exit_on_error("rig_fidelity", main))
