"""How sure a difference between two cells is, with the run as the unit.

Each cell has per-user metric values for every seed, paired with the baseline's by seed and
user. The relative change of the mean gets a 95% confidence interval from a two-level bootstrap
(seeds resampled, then users within each drawn seed, the same users for both cells), and a
p-value from a paired t-test over the per-seed means: seeds, not (seed, user) pairs, are the
independent units, so run-to-run variance counts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

RESAMPLES = 2000


@dataclass(frozen=True)
class Comparison:
    change: float  # relative change of the mean against the baseline
    low: float  # 95% bootstrap interval of the change
    high: float
    p: Optional[float]  # paired t-test over per-seed means; None with one seed
    seeds: int

    @property
    def detectable(self) -> bool:
        """False when the interval includes 0: "no detectable difference"."""
        return not (self.low <= 0.0 <= self.high)


def compare(
    cell: list[np.ndarray], base: list[np.ndarray], resamples: int = RESAMPLES, seed: int = 0
) -> Comparison:
    """``cell[s]`` and ``base[s]``: per-user values of seed s, the same users in the same order."""
    assert cell and len(cell) == len(base)
    assert all(len(a) == len(b) and len(a) for a, b in zip(cell, base))
    cell_means = np.array([a.mean() for a in cell])
    base_means = np.array([b.mean() for b in base])
    change = _ratio(cell_means.mean(), base_means.mean())
    rng = np.random.default_rng(seed)
    n_seeds = len(cell)
    stats = np.empty(resamples)
    for r in range(resamples):
        num = den = 0.0
        for s in rng.integers(n_seeds, size=n_seeds):
            users = rng.integers(len(cell[s]), size=len(cell[s]))
            num += cell[s][users].mean()
            den += base[s][users].mean()
        stats[r] = _ratio(num, den)
    low, high = np.nanpercentile(stats, [2.5, 97.5])
    return Comparison(
        change, float(low), float(high), _seed_level_p(cell_means, base_means), n_seeds
    )


def _ratio(num: float, den: float) -> float:
    return float(num / den - 1.0) if den else float("nan")


def _seed_level_p(cell_means: np.ndarray, base_means: np.ndarray) -> Optional[float]:
    if len(cell_means) < 2:
        return None
    diff = cell_means - base_means
    if np.allclose(diff, diff[0]):  # no spread: the t statistic is undefined
        return 1.0 if np.allclose(diff, 0.0) else None
    from scipy.stats import ttest_rel

    return float(ttest_rel(cell_means, base_means).pvalue)
