"""[ID vector ; adapted features] projected back to the hidden size."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from recxplore.adapt.fusions.replace import features_of
from recxplore.adapt.inputs import ItemInputs
from recxplore.adapt.item_embedder import INIT_STD, FeatureEmbedder, ItemEmbedder
from recxplore.registry import FUSIONS


class ConcatFusion(FeatureEmbedder):
    def __init__(self, features: torch.Tensor, adapter: nn.Module, hidden: int, dropout: float):
        super().__init__(features, adapter, hidden, dropout)
        self.ids = nn.Embedding(self.n_items + 1, hidden, padding_idx=0)
        nn.init.normal_(self.ids.weight, std=INIT_STD)
        self.merge = nn.Linear(2 * hidden, hidden)

    def fuse(self, semantic: torch.Tensor) -> torch.Tensor:
        return self.merge(torch.cat([self.ids.weight, semantic], dim=-1))


def build_concat(
    n_items: int,
    hidden: int,
    inputs: ItemInputs,
    make_adapter: Callable[[int], nn.Module],
    dropout: float,
    settings: None,
) -> ItemEmbedder:
    features = features_of(inputs)
    return ConcatFusion(features, make_adapter(features.shape[1]), hidden, dropout)


FUSIONS.register(
    "concat",
    build_concat,
    requires=("features",),
    help="[ID; adapted features] projected back to the hidden size",
)
