"""Seeded sampling of rig parameter vectors (bpy-free).

`sample_params(spec, seed, index)` depends only on (seed, index), so any machine, shard
or restart draws the same vector for the same pair.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rigs.spec import RigSpec


@dataclass(frozen=True)
class SamplingConfig:
    au_mode: str = "uniform"  # "uniform": every AU uniform in its range; "sparse": few active
    sparse_active: tuple[int, int] = (1, 4)  # how many AU parameters are active, inclusive
    max_yaw: float | None = None  # degrees; None = the spec's range
    max_pitch: float | None = None
    max_roll: float | None = None
    identity: bool = True  # False keeps the base face (0.5 everywhere)


def _rng(seed: int, index: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([seed, index]))


def _pose_limit(spec: RigSpec, name: str, limit: float | None) -> tuple[float, float]:
    p = spec.param(name)
    if limit is None:
        return p.min, p.max
    return max(p.min, -limit), min(p.max, limit)


def sample_params(
    spec: RigSpec, seed: int, index: int, cfg: SamplingConfig | None = None
) -> np.ndarray:
    """One parameter vector in spec order for pair `index` of the run seeded `seed`."""
    cfg = cfg or SamplingConfig()
    if cfg.au_mode not in ("uniform", "sparse"):
        raise ValueError(f"au_mode must be 'uniform' or 'sparse', not {cfg.au_mode!r}")
    rng = _rng(seed, index)
    v = spec.defaults().astype(np.float64)
    limits = {"head_yaw": cfg.max_yaw, "head_pitch": cfg.max_pitch, "head_roll": cfg.max_roll}
    for p in spec.params:  # one draw per parameter in spec order, whatever the mode
        lo, hi = _pose_limit(spec, p.name, limits[p.name]) if p.name in limits else (p.min, p.max)
        draw = rng.uniform(lo, hi) if not p.discrete else rng.integers(int(lo), int(hi) + 1)
        if p.group == "identity" and not cfg.identity:
            continue
        v[p.index] = draw
    if cfg.au_mode == "sparse":
        au = [p.index for p in spec.group("au")]
        k = int(rng.integers(cfg.sparse_active[0], cfg.sparse_active[1] + 1))
        keep = set(rng.choice(au, size=min(k, len(au)), replace=False).tolist())
        for i in au:
            if i not in keep:
                v[i] = spec.params[i].default
    return v.astype(np.float32)
