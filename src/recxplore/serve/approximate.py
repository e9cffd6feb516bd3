"""Approximate top-K for large catalogues: a faiss HNSW graph over the item table, searched by
inner product (``recxplore serve --approximate``).

Exact top-K scores every item for every history (a million items and 64 dimensions: 64 M
multiply-adds a history); the graph visits a few thousand. It is built when the bundle loads
(minutes for a million items) and is approximate: an item the exact search ranks in the top K
can be missed, which ``bench/approximate_topk.py`` measures as recall against the exact search.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

NEIGHBOURS = 32  # HNSW links per node: faiss's usual setting for 64-256 dimensions
EF_CONSTRUCTION = 64


@dataclass
class ApproximateIndex:
    """An HNSW graph over item rows 1..N of a table (row 0 is padding and never returned)."""

    index: Any  # faiss.IndexHNSWFlat
    ef_search: int

    @classmethod
    def build(cls, table: torch.Tensor, ef_search: int = 256) -> ApproximateIndex:
        import faiss

        items = np.ascontiguousarray(table[1:].float().numpy())
        index = faiss.IndexHNSWFlat(items.shape[1], NEIGHBOURS, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = EF_CONSTRUCTION
        index.add(items)
        return cls(index, ef_search)

    def search(self, users: torch.Tensor, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(scores, item indices), each (B, k), best first; index 0 where fewer were found."""
        self.index.hnsw.efSearch = max(self.ef_search, k)
        scores, found = self.index.search(np.ascontiguousarray(users.float().numpy()), k)
        return scores, np.where(found >= 0, found + 1, 0)
