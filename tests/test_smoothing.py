"""One Euro filter: removes jitter, follows motion, resets at gaps and cuts."""

from __future__ import annotations

import numpy as np

from au_retarget_addon.core.smoothing import OneEuroConfig, OneEuroFilter, smooth_track


def test_jitter_is_reduced_and_motion_followed():
    rng = np.random.default_rng(0)
    t = np.arange(300) / 30.0
    truth = np.where(t < 5, 0.2, 0.8)  # a step: real motion at t = 5 s
    noisy = truth + rng.normal(0, 0.03, t.shape)
    out = smooth_track(t, noisy[:, None], np.ones_like(t, bool), OneEuroConfig(1.0, 5.0))[:, 0]
    still = (t > 1) & (t < 4.9)
    assert out[still].std() < 0.5 * noisy[still].std()
    after = np.flatnonzero(t >= 5)[:10]  # within a third of a second of the step
    assert out[after[-1]] > 0.7


def test_missing_frames_stay_empty_and_reset_the_filter():
    t = np.arange(10) / 30.0
    vals = np.array([0.0] * 5 + [1.0] * 5)[:, None]
    valid = np.ones(10, bool)
    valid[4] = False
    cfg = OneEuroConfig(max_gap=0.04)
    out = smooth_track(t, vals, valid, cfg)
    assert np.isnan(out[4, 0])
    assert out[5, 0] == 1.0  # after the gap the filter restarts at the new value


def test_cut_resets():
    t = np.arange(6) / 30.0
    vals = np.array([0, 0, 0, 1, 1, 1], float)[:, None]
    out = smooth_track(t, vals, np.ones(6, bool), OneEuroConfig(), cuts={3})
    assert out[3, 0] == 1.0


def test_vector_channels_are_independent():
    f = OneEuroFilter()
    f(0.0, np.array([0.0, 1.0]))
    y = f(1 / 30, np.array([0.0, 0.0]))
    assert y[0] == 0.0 and 0 < y[1] < 1
