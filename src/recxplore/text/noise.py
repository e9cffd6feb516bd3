"""Noisier metadata on purpose (``text.noise``): for a seeded share of items, attributes dropped
or swapped, to ask how much a pipeline leans on clean metadata.

- ``drop``: each attribute of a chosen item is removed with probability one half; one, drawn at
  random, is always kept.
- ``shuffle``: the chosen items' attribute sets are permuted among them, so a chosen item carries
  another chosen item's attributes (wrong metadata; by chance an item may keep its own).

Applied before flattening, so LLM rewriting and extraction see the noisy attributes.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from recxplore.config import TextConfig


def noisy_meta(item_meta: list[dict[str, Any]], cfg: TextConfig) -> list[dict[str, Any]]:
    """``item_meta`` (row 0 padding) with ``cfg.noise`` applied to ``cfg.noise_share`` of the
    items; the input is not changed."""
    if cfg.noise == "none" or cfg.noise_share == 0:
        return item_meta
    rng = np.random.default_rng([cfg.noise_seed, 7])
    n_items = len(item_meta) - 1
    chosen = 1 + np.sort(rng.choice(n_items, size=round(cfg.noise_share * n_items), replace=False))
    out = list(item_meta)
    if cfg.noise == "shuffle":
        for item, source in zip(chosen, rng.permutation(chosen)):
            out[item] = item_meta[source]
        return out
    for item in chosen:
        keys = list(item_meta[item])
        if not keys:
            continue
        kept = rng.random(len(keys)) >= 0.5
        kept[rng.integers(len(keys))] = True
        out[item] = {k: item_meta[item][k] for k, keep in zip(keys, kept) if keep}
    return out
