"""Agreement metrics for AU intensity: ICC(3,1) (Shrout and Fleiss 1979), MAE and Pearson r."""

from __future__ import annotations

import numpy as np


def pearson_r(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson r of two series; 0 where either is constant (r is undefined there)."""
    if a.std() < 1e-9 or b.std() < 1e-9:
        return 0.0
    return float(np.corrcoef(a, b)[0, 1])


def icc_3_1(ratings: np.ndarray) -> float:
    """ICC(3,1), two-way mixed, consistency, single rater: (BMS - EMS) / (BMS + (k-1) EMS).

    ratings: (n targets, k raters), e.g. columns (ground truth, prediction).
    """
    x = np.asarray(ratings, dtype=np.float64)
    n, k = x.shape
    grand = x.mean()
    ss_rows = k * ((x.mean(axis=1) - grand) ** 2).sum()
    ss_cols = n * ((x.mean(axis=0) - grand) ** 2).sum()
    ss_err = ((x - grand) ** 2).sum() - ss_rows - ss_cols
    bms = ss_rows / (n - 1)
    ems = ss_err / ((n - 1) * (k - 1))
    denom = bms + (k - 1) * ems
    return float((bms - ems) / denom) if denom > 0 else float("nan")


def au_table(true: np.ndarray, pred: np.ndarray, names: list[str]) -> dict[str, dict[str, float]]:
    """Per AU (columns, FACS 0..5 scale): ICC(3,1) and MAE, plus their averages."""
    out = {}
    for j, name in enumerate(names):
        ok = np.isfinite(true[:, j]) & np.isfinite(pred[:, j])  # NaN: frame not coded
        t, p = true[ok, j], pred[ok, j]
        out[name] = {
            "icc": icc_3_1(np.stack([t, p], axis=1)) if ok.sum() > 1 else float("nan"),
            "mae": float(np.abs(t - p).mean()) if ok.any() else float("nan"),
        }
    out["average"] = {
        "icc": float(np.nanmean([v["icc"] for v in out.values()])),
        "mae": float(np.nanmean([v["mae"] for k, v in out.items() if k != "average"])),
    }
    return out
