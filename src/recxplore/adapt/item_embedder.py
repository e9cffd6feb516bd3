"""Item embedders: modules mapping item indices to vectors. Backbones see only this interface.

Index 0 is padding and maps to the zero vector. ``all_items()`` returns the (n_items + 1, D)
table used both to embed input sequences and to score candidates.
"""

from __future__ import annotations

from typing import Optional

import torch
from torch import nn


class ItemEmbedder(nn.Module):
    """Base class. Subclasses implement ``all_items``; lookups index into it."""

    def __init__(self, n_items: int, dim: int):
        super().__init__()
        self.n_items = n_items
        self.dim = dim

    def all_items(self) -> torch.Tensor:  # (n_items + 1, D)
        raise NotImplementedError

    def forward(self, items: torch.Tensor) -> torch.Tensor:  # (...,) -> (..., D)
        return self.all_items()[items]

    def extra_loss(self, items: torch.Tensor, table: torch.Tensor) -> Optional[torch.Tensor]:
        """An auxiliary loss on the given items, given this step's ``all_items()`` table
        (e.g. ID/text alignment); None by default."""
        return None


class IDEmbedder(ItemEmbedder):
    """A learned ID embedding table: the ID-only baseline (``adapt.fusion=id``)."""

    def __init__(self, n_items: int, dim: int, init_std: float = 0.02):
        super().__init__(n_items, dim)
        self.table = nn.Embedding(n_items + 1, dim, padding_idx=0)
        nn.init.normal_(self.table.weight, std=init_std)
        with torch.no_grad():
            self.table.weight[0].zero_()

    def all_items(self) -> torch.Tensor:
        return self.table.weight

    def forward(self, items: torch.Tensor) -> torch.Tensor:
        return self.table(items)
