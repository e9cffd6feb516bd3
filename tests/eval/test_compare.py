"""Run-level uncertainty: bootstrap intervals and seed-level p-values on hand-made cells."""

import numpy as np
import pytest
from scipy.stats import ttest_rel

from recxplore.eval.compare import compare


def _users(seed: int, n: int = 2000) -> np.ndarray:
    return np.random.default_rng(seed).uniform(0.0, 0.3, size=n)


def test_a_cell_equal_to_its_baseline_shows_no_difference():
    base = [_users(s) for s in range(3)]
    found = compare([b.copy() for b in base], base, resamples=200)
    assert found.change == 0.0 and found.low == 0.0 and found.high == 0.0
    assert not found.detectable and found.p == 1.0 and found.seeds == 3


def test_a_uniform_ten_percent_gain_has_a_tight_interval():
    base = [_users(s) for s in range(3)]
    found = compare([1.1 * b for b in base], base, resamples=200)
    assert found.change == pytest.approx(0.10)
    assert found.low == pytest.approx(0.10) and found.high == pytest.approx(0.10)
    assert found.detectable and found.p is not None and found.p < 0.01


def test_seeds_that_disagree_are_no_detectable_difference_though_pooled_users_say_otherwise():
    base = [_users(s) for s in range(3)]
    factors = (1.2, 0.8, 1.2)  # two seeds gain, one loses as much
    cell = [f * b for f, b in zip(factors, base)]
    found = compare(cell, base, resamples=500)
    pooled = ttest_rel(np.concatenate(cell), np.concatenate(base)).pvalue
    assert pooled < 1e-10  # what the old report printed: "significant"
    assert not found.detectable and found.low < 0.0 < found.high
    assert found.p is not None and found.p > 0.05


def test_one_seed_has_an_interval_but_no_p_value():
    base = [_users(0)]
    found = compare([base[0] + 0.01], base, resamples=200)
    assert found.p is None and found.seeds == 1 and found.low > 0.0


def test_the_interval_is_reproducible():
    base = [_users(s) for s in range(3)]
    cell = [b * np.random.default_rng(9).uniform(0.9, 1.2, size=len(b)) for b in base]
    assert compare(cell, base, resamples=300) == compare(cell, base, resamples=300)
