"""The adapted LLM features are the item vectors (the paper's best, with MoE)."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from recxplore.adapt.inputs import ItemInputs
from recxplore.adapt.item_embedder import FeatureEmbedder, ItemEmbedder
from recxplore.registry import FUSIONS


def features_of(inputs: ItemInputs) -> torch.Tensor:
    assert inputs.features is not None, "the pipeline hands fusions their features"
    return torch.from_numpy(inputs.features)


def build_replace(
    n_items: int,
    hidden: int,
    inputs: ItemInputs,
    make_adapter: Callable[[int], nn.Module],
    dropout: float,
    settings: None,
) -> ItemEmbedder:
    features = features_of(inputs)
    return FeatureEmbedder(features, make_adapter(features.shape[1]), hidden, dropout)


FUSIONS.register(
    "replace",
    build_replace,
    requires=("features",),
    help="adapted LLM features only (the paper's best with moe)",
)
