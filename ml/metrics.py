"""Agreement metrics for AU intensity: ICC(3,1) (Shrout and Fleiss 1979) and MAE."""

from __future__ import annotations

import numpy as np


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
        out[name] = {
            "icc": icc_3_1(np.stack([true[:, j], pred[:, j]], axis=1)),
            "mae": float(np.abs(true[:, j] - pred[:, j]).mean()),
        }
    out["average"] = {
        "icc": float(np.nanmean([v["icc"] for v in out.values()])),
        "mae": float(np.mean([v["mae"] for k, v in out.items() if k != "average"])),
    }
    return out
