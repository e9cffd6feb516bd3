"""ID vector + adapted features."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from recxplore.adapt.fusions.replace import features_of
from recxplore.adapt.inputs import ItemInputs
from recxplore.adapt.item_embedder import INIT_STD, FeatureEmbedder, ItemEmbedder
from recxplore.registry import FUSIONS


class AddFusion(FeatureEmbedder):
    def __init__(self, features: torch.Tensor, adapter: nn.Module, hidden: int, dropout: float):
        super().__init__(features, adapter, hidden, dropout)
        self.ids = nn.Embedding(self.n_items + 1, hidden, padding_idx=0)
        nn.init.normal_(self.ids.weight, std=INIT_STD)

    def fuse(self, semantic: torch.Tensor) -> torch.Tensor:
        return self.ids.weight + semantic


def build_add(
    n_items: int,
    hidden: int,
    inputs: ItemInputs,
    make_adapter: Callable[[int], nn.Module],
    dropout: float,
    settings: None,
) -> ItemEmbedder:
    features = features_of(inputs)
    return AddFusion(features, make_adapter(features.shape[1]), hidden, dropout)


FUSIONS.register("add", build_add, requires=("features",), help="ID + adapted features")
