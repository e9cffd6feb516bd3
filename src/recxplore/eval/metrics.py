"""Ranking metrics as pure functions of 1-based ranks (one target per user).

HR@K   = share of users whose target ranks <= K
NDCG@K = mean of 1 / log2(rank + 1) over users whose target ranks <= K (0 otherwise)
MRR@K  = mean of 1 / rank over users whose target ranks <= K (0 otherwise)
"""

from __future__ import annotations

import numpy as np


def _ranks(ranks) -> np.ndarray:
    ranks = np.asarray(ranks, dtype=np.float64)
    assert ranks.ndim == 1 and (ranks >= 1).all(), "ranks are 1-based"
    return ranks


def hit_rate(ranks, k: int) -> float:
    ranks = _ranks(ranks)
    return float((ranks <= k).mean()) if len(ranks) else 0.0


def ndcg(ranks, k: int) -> float:
    ranks = _ranks(ranks)
    gains = np.where(ranks <= k, 1.0 / np.log2(ranks + 1.0), 0.0)
    return float(gains.mean()) if len(ranks) else 0.0


def mrr(ranks, k: int) -> float:
    ranks = _ranks(ranks)
    gains = np.where(ranks <= k, 1.0 / ranks, 0.0)
    return float(gains.mean()) if len(ranks) else 0.0


def summarise(ranks, ks: list[int]) -> dict[str, float]:
    out: dict[str, float] = {}
    for name, fn in (("HR", hit_rate), ("NDCG", ndcg), ("MRR", mrr)):
        for k in ks:
            out[f"{name}@{k}"] = round(fn(ranks, k), 6)
    return out
