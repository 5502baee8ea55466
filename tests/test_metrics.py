"""ICC(3,1) against the published textbook example, and the AU table."""

import numpy as np
import pytest

from ml.eval.metrics import au_table, icc_3_1

# Shrout and Fleiss (1979), Table 2: 6 targets rated by 4 judges; published ICC(3,1) = .71
SHROUT_FLEISS = np.array(
    [[9, 2, 5, 8], [6, 1, 3, 2], [8, 4, 6, 8], [7, 1, 2, 6], [10, 5, 6, 9], [6, 2, 4, 7]]
)


def test_icc_3_1_matches_shrout_and_fleiss():
    assert icc_3_1(SHROUT_FLEISS) == pytest.approx(0.71, abs=0.005)


def test_icc_is_one_for_consistent_raters_and_low_for_noise():
    truth = np.linspace(0, 5, 50)
    assert icc_3_1(np.stack([truth, truth + 1.0], 1)) == pytest.approx(1.0)  # consistency
    rng = np.random.default_rng(0)
    assert abs(icc_3_1(np.stack([truth, rng.permutation(truth)], 1))) < 0.3


def test_au_table_reports_each_au_and_the_average():
    true = np.array([[0.0, 1.0], [2.0, 3.0], [4.0, 5.0]])
    table = au_table(true, true + np.array([0.5, 0.0]), ["AU1", "AU2"])
    assert table["AU1"]["mae"] == 0.5 and table["AU2"]["mae"] == 0.0
    assert table["average"]["icc"] == pytest.approx(1.0) and table["average"]["mae"] == 0.25
