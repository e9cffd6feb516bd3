"""How healthy a feature matrix is: can its rows tell items apart?

Frozen LLM features of short, templated item texts tend to be nearly one vector: a shared
prompt prefix gives every item the same leading hidden states, and mean pooling then adds a
common direction that dwarfs the item-specific ones. These numbers say how much of that there is.
"""

from __future__ import annotations

from collections import Counter
from typing import Any, Optional

import numpy as np


def feature_health(
    features: np.ndarray, texts: list[str], token_counts: Optional[list[int]] = None
) -> dict[str, Any]:
    """Diagnostics of ``features`` (items x dim, padding row excluded) and their ``texts``.

    - ``mean_pairwise_cosine``: mean cosine over all pairs of distinct items (1 = one vector);
    - ``common_mean_share``: share of the mean squared norm that is the mean vector's;
    - ``effective_rank``: participation ratio (sum of eigenvalues)^2 / sum of squares of the
      centred features' covariance; between 1 and the dimension;
    - ``first_component_share``: share of the centred variance on the first principal component;
    - ``first_component_vs_tokens``: absolute correlation of the items' first-component scores
      with their token counts (a length artefact when large), when counts are given;
    - ``items_sharing_a_text``: items whose text is identical to another item's.
    """
    x = np.asarray(features, dtype=np.float64)
    n = len(x)
    if n < 2:
        raise ValueError("feature health needs at least 2 items")
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    unit = x / np.where(norms > 0, norms, 1.0)
    total = unit.sum(axis=0)
    mean_cos = (float(total @ total) - float((unit * unit).sum())) / (n * (n - 1))
    mean = x.mean(axis=0)
    second_moment = float((x * x).sum(axis=1).mean())
    centred = x - mean
    eig = np.clip(np.linalg.eigvalsh(centred.T @ centred / max(n - 1, 1)), 0.0, None)[::-1]
    variance = float(eig.sum())
    out: dict[str, Any] = {
        "items": n,
        "dim": int(x.shape[1]),
        "mean_pairwise_cosine": round(mean_cos, 4),
        "common_mean_share": round(float(mean @ mean) / second_moment, 4)
        if second_moment
        else None,
        "effective_rank": round(variance**2 / float((eig**2).sum()), 2) if variance else 0.0,
        "first_component_share": round(float(eig[0]) / variance, 4) if variance else None,
        "first_component_vs_tokens": None,
        "items_sharing_a_text": sum(c for c in Counter(texts).values() if c > 1),
    }
    if token_counts is not None and variance:
        _, vectors = np.linalg.eigh(centred.T @ centred)
        scores = centred @ vectors[:, -1]
        counts = np.asarray(token_counts, dtype=np.float64)
        if counts.std() > 0 and scores.std() > 0:
            r = abs(float(np.corrcoef(scores, counts)[0, 1]))  # a component's sign is arbitrary
            out["first_component_vs_tokens"] = round(r, 4)
    return out


def distinct_codes(codes: np.ndarray) -> int:
    """How many distinct code tuples the items (padding excluded) have: fewer than the items
    means some items cannot be told apart by a PQ adapter."""
    return len({tuple(row) for row in np.asarray(codes)[1:]})
