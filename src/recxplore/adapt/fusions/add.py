"""ID vector + adapted features."""

from __future__ import annotations

import torch
from torch import nn

from recxplore.adapt.item_embedder import INIT_STD, FeatureEmbedder
from recxplore.registry import FUSIONS


class AddFusion(FeatureEmbedder):
    def __init__(self, features: torch.Tensor, adapter: nn.Module, hidden: int, dropout: float):
        super().__init__(features, adapter, hidden, dropout)
        self.ids = nn.Embedding(self.n_items + 1, hidden, padding_idx=0)
        nn.init.normal_(self.ids.weight, std=INIT_STD)

    def fuse(self, semantic: torch.Tensor) -> torch.Tensor:
        return self.ids.weight + semantic


FUSIONS.register("add", AddFusion.build, requires=("features",), help="ID + adapted features")
