"""[ID vector ; adapted features] projected back to the hidden size (the ID part zero for an
item never in training)."""

from __future__ import annotations

from typing import Optional

import torch
from torch import nn

from recxplore.adapt.item_embedder import INIT_STD, FeatureEmbedder, id_table
from recxplore.registry import FUSIONS


class ConcatFusion(FeatureEmbedder):
    def __init__(
        self,
        features: torch.Tensor,
        adapter: nn.Module,
        hidden: int,
        dropout: float,
        seen: Optional[torch.Tensor] = None,
    ):
        super().__init__(features, adapter, hidden, dropout, seen)
        self.ids = id_table(self.n_items, hidden, INIT_STD)
        self.merge = nn.Linear(2 * hidden, hidden)

    def fuse(self, semantic: torch.Tensor, ids: Optional[torch.Tensor] = None) -> torch.Tensor:
        rows = self.ids.weight if ids is None else self.ids(ids)
        return self.merge(torch.cat([self.trained_only(rows, ids), semantic], dim=-1))


FUSIONS.register(
    "concat",
    ConcatFusion.build,
    requires=("features",),
    help="[ID; adapted features] projected back to the hidden size",
)
