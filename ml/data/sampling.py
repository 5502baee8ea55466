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
    # "uniform": every AU parameter uniform in its range; "sparse": a few AU parameters active,
    # each drawn on its own (a left/right pair is almost never active together); "facs": a
    # few FACS AUs active, a left/right pair both sides at nearly one intensity with
    # probability `symmetric_p` (as faces mostly move), else each side drawn on its own;
    # "prototypes": with probability `prototype_p` the AUs of one emotion prototype
    # (`PROTOTYPES`) at one strength, else a "facs" draw
    au_mode: str = "uniform"
    sparse_active: tuple[int, int] = (1, 4)  # how many AU parameters ("sparse") or FACS AUs
    symmetric_p: float = 0.75  # "facs": the share of active left/right AUs drawn symmetric
    prototype_p: float = 0.5  # "prototypes": the share of draws that are a prototype
    max_yaw: float | None = None  # degrees; None = the spec's range
    max_pitch: float | None = None
    max_roll: float | None = None
    identity: bool = True  # False keeps the base face (0.5 everywhere)


AU_MODES = ("uniform", "sparse", "facs", "prototypes")

# The emotion prototypes of EMFACS (Friesen & Ekman 1983; as tabulated in Matsumoto & Ekman's
# FACS-based prediction tables), restricted to the rig's AUs: real faces move AUs together,
# and a real smile is AU12 with AU6 and often AU25, which "facs" draws rarely combine.
# The last item is the prototype's side: "both", or "one" (contempt is a one-sided AU12/AU14).
PROTOTYPES: dict[str, tuple[tuple[str, ...], str]] = {
    "happiness": (("AU6", "AU12"), "both"),
    "happiness_open": (("AU6", "AU12", "AU25"), "both"),
    "sadness": (("AU1", "AU4", "AU15"), "both"),
    "sadness_chin": (("AU1", "AU4", "AU15", "AU17"), "both"),
    "surprise": (("AU1", "AU2", "AU5", "AU26"), "both"),
    "fear": (("AU1", "AU2", "AU4", "AU5", "AU7", "AU20", "AU26"), "both"),
    "anger": (("AU4", "AU5", "AU7", "AU23"), "both"),
    "anger_press": (("AU4", "AU5", "AU7", "AU17", "AU24"), "both"),
    "disgust": (("AU9", "AU15", "AU16"), "both"),
    "disgust_lip": (("AU10", "AU17"), "both"),
    "contempt": (("AU12", "AU14"), "one"),
}


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
    if cfg.au_mode not in AU_MODES:
        raise ValueError(f"au_mode must be one of {', '.join(AU_MODES)}, not {cfg.au_mode!r}")
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
    elif cfg.au_mode == "facs":
        _facs_aus(spec, v, rng, cfg)
    elif cfg.au_mode == "prototypes":
        if rng.uniform() < cfg.prototype_p:
            _prototype_aus(spec, v, rng)
        else:
            _facs_aus(spec, v, rng, cfg)
    return v.astype(np.float32)


def au_groups(spec: RigSpec) -> list[list[int]]:
    """The AU parameter indices per FACS AU (left and right together), then each rig AU
    without a FACS code (AD30) on its own: the units "facs" mode switches on."""
    groups = list(spec.facs_groups().values())
    coded = {i for g in groups for i in g}
    return groups + [[p.index] for p in spec.group("au") if p.index not in coded]


def _facs_aus(spec: RigSpec, v: np.ndarray, rng: np.random.Generator, cfg: SamplingConfig) -> None:
    """Keep a few `au_groups` of the uniform draws in `v`; a left/right pair is made
    symmetric with probability `cfg.symmetric_p`: both sides at the first side's draw
    times 0.8..1 each."""
    groups = au_groups(spec)
    k = int(rng.integers(cfg.sparse_active[0], cfg.sparse_active[1] + 1))
    keep = rng.choice(len(groups), size=min(k, len(groups)), replace=False).tolist()
    for g, idx in enumerate(groups):
        if g not in keep:
            v[idx] = [spec.params[i].default for i in idx]
        elif len(idx) > 1 and rng.uniform() < cfg.symmetric_p:
            v[idx] = v[idx[0]] * rng.uniform(0.8, 1.0, len(idx))


def _prototype_aus(spec: RigSpec, v: np.ndarray, rng: np.random.Generator) -> None:
    """Set the AUs in `v` to one of `PROTOTYPES`: every AU of it at one strength
    (0.2..1 of the range) times 0.6..1 each, both sides within 0.8..1 of each other (or one
    side only); every other AU at its default."""
    groups = spec.facs_groups()
    for p in spec.group("au"):
        v[p.index] = p.default
    names = sorted(PROTOTYPES)
    aus, sides = PROTOTYPES[names[int(rng.integers(len(names)))]]
    strength = rng.uniform(0.2, 1.0)
    side = int(rng.integers(2))  # for a one-sided prototype: 0 = the first (_L), 1 = _R
    for code in aus:
        idx = groups[code]
        level = strength * rng.uniform(0.6, 1.0)
        for k, i in enumerate(idx):
            p = spec.params[i]
            on = sides == "both" or len(idx) == 1 or k == side
            v[i] = p.min + (p.max - p.min) * level * rng.uniform(0.8, 1.0) if on else p.default
