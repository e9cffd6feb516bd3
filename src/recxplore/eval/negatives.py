"""Sampled-ranking negatives: uniform items the user never interacted with.

A deterministic function of (dataset item fingerprint, seed, part), so every model compared on
the same dataset and seed is ranked against the same candidates. When a user has fewer than
``n`` unseen items, all of them are used and the row is padded with 0 (padding never scores).
"""

from __future__ import annotations

import hashlib

import numpy as np

from recxplore.data.dataset import Dataset


def _rng(fingerprint: str, seed: int, part: str) -> np.random.Generator:
    digest = hashlib.sha256(f"{fingerprint}:{seed}:{part}".encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "little"))


def sample_negatives(ds: Dataset, users: np.ndarray, n: int, seed: int, part: str) -> np.ndarray:
    rng = _rng(ds.item_fingerprint, seed, part)
    out = np.zeros((len(users), n), dtype=np.int64)
    for row, user in enumerate(users):
        seen = np.unique(ds.sequence(int(user)))
        unseen_count = ds.n_items - len(seen)
        if unseen_count <= n:
            pool = np.setdiff1d(np.arange(1, ds.n_items + 1), seen, assume_unique=True)
            out[row, : len(pool)] = pool
            continue
        picked: list[int] = []
        chosen: set[int] = set()
        while len(picked) < n:  # rejection sampling: cheap when the user saw few items
            draw = rng.integers(1, ds.n_items + 1, size=2 * (n - len(picked)) + 8)
            fresh = draw[~np.isin(draw, seen)]
            for item in fresh.tolist():
                if item not in chosen:
                    chosen.add(item)
                    picked.append(item)
                    if len(picked) == n:
                        break
        out[row] = picked
    return out
