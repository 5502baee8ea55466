"""Temporal filtering of parameter tracks: the One Euro filter (Casiez et al., CHI 2012).

Per channel, an adaptive low-pass filter: strong smoothing when the value moves slowly
(jitter), little when it moves fast (real motion). `min_cutoff` (Hz) sets the smoothing
of slow motion, `beta` how fast the cutoff rises with speed. Tracks reset at cuts and
after gaps, so a filter never smooths across missing frames.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class OneEuroConfig:
    min_cutoff: float = 1.0  # Hz
    beta: float = 0.05
    d_cutoff: float = 1.0  # Hz, for the derivative
    max_gap: float = 0.25  # seconds without a value that reset the filter


def _alpha(cutoff: np.ndarray | float, dt: float) -> np.ndarray:
    tau = 1.0 / (2.0 * math.pi * np.asarray(cutoff, dtype=np.float64))
    return 1.0 / (1.0 + tau / dt)


class OneEuroFilter:
    """Vector One Euro filter: every channel filtered independently, one shared clock."""

    def __init__(self, cfg: OneEuroConfig | None = None) -> None:
        self.cfg = cfg or OneEuroConfig()
        self.reset()

    def reset(self) -> None:
        self.x: np.ndarray | None = None
        self.dx: np.ndarray | None = None
        self.t: float | None = None

    def __call__(self, t: float, value: np.ndarray) -> np.ndarray:
        """Filtered value at time t (seconds); resets after a gap or a step back in time."""
        value = np.asarray(value, dtype=np.float64)
        if self.x is None or self.t is None or not 0 < t - self.t <= self.cfg.max_gap:
            self.x, self.dx, self.t = value.copy(), np.zeros_like(value), t
            return value.copy()
        dt = t - self.t
        assert self.dx is not None
        dx = (value - self.x) / dt
        self.dx = self.dx + _alpha(self.cfg.d_cutoff, dt) * (dx - self.dx)
        cutoff = self.cfg.min_cutoff + self.cfg.beta * np.abs(self.dx)
        self.x = self.x + _alpha(cutoff, dt) * (value - self.x)
        self.t = t
        return self.x.copy()


def smooth_track(
    times: np.ndarray,
    values: np.ndarray,
    valid: np.ndarray,
    cfg: OneEuroConfig | None = None,
    cuts: set[int] | None = None,
) -> np.ndarray:
    """Filter a (T, C) track; rows with valid=False stay NaN and break the filter."""
    filt = OneEuroFilter(cfg)
    out = np.full(values.shape, np.nan)
    for i, (t, ok) in enumerate(zip(times, valid, strict=True)):
        if cuts and i in cuts:
            filt.reset()
        if not ok:
            continue
        out[i] = filt(float(t), values[i])
    return out
