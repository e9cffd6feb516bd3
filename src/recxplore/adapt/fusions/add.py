"""ID vector + adapted features (no ID vector for an item never in training)."""

from __future__ import annotations

from typing import Optional

import torch
from torch import nn

from recxplore.adapt.item_embedder import INIT_STD, FeatureEmbedder, id_table
from recxplore.registry import FUSIONS


class AddFusion(FeatureEmbedder):
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

    def fuse(self, semantic: torch.Tensor, ids: Optional[torch.Tensor] = None) -> torch.Tensor:
        rows = self.ids.weight if ids is None else self.ids(ids)
        return self.trained_only(rows, ids) + semantic


FUSIONS.register("add", AddFusion.build, requires=("features",), help="ID + adapted features")
