"""LLM-ESR's dual-view item representation (Liu et al., NeurIPS'24, liuqidong07/LLM-ESR).

Two views of every item: a semantic view, the frozen LLM features through a two-layer linear
adapter (d -> d/2 -> ``model.hidden``, no activation, as the authors' ``adapter``), and a
collaborative view, an ID table initialised from PCA of the same features and trained. The
sequential model (``recxplore.backbones.dual_view``) encodes each view's sequence with one
shared backbone, optionally after a cross-attention between the two views, and scores items
with the two views side by side (2 x ``model.hidden``). Its retrieval-augmented
self-distillation pulls a user's representation towards the mean representation of the users
most similar to them by an LLM embedding of their histories (``recxplore.extract.users``).

Deviations, each because of how recxplore trains (docs/baselines.md): both views start at the
ID table's scale (std 0.02) rather than at the features' own; the model is trained with the
configured ``train.loss`` rather than the authors' one-negative BCE; an item never in training
keeps its initial collaborative row.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Optional

import numpy as np
import torch
from torch import nn

from recxplore.adapt.fusions.semantic_init import SemanticInit, semantic_table
from recxplore.adapt.inputs import ItemInputs
from recxplore.adapt.item_embedder import FeatureEmbedder, ItemEmbedder, seen_rows
from recxplore.config import option
from recxplore.extract.users import UserNeighbours
from recxplore.registry import FUSIONS


@dataclass(frozen=True, kw_only=True)
class LLMESRConfig:
    cross_attention: bool = option(
        True, "llmesr: a cross-attention between the two views before the backbone"
    )
    distill_weight: float = option(
        0.1,
        "llmesr: weight of the self-distillation from similar users (the authors' alpha; "
        "0: the dual view alone, no user embedding)",
        ge=0.0,
    )
    similar_users: int = option(10, "llmesr: similar users each user is distilled towards", ge=1)
    user_items: int = option(
        50,
        "llmesr: most recent training items of a user named in the prompt that embeds them",
        ge=1,
    )


def two_layer_adapter(d_in: int, hidden: int) -> nn.Module:
    """The authors' adapter: two linear layers, d -> d/2 -> hidden, without an activation."""
    middle = max(1, d_in // 2)
    return nn.Sequential(nn.Linear(d_in, middle), nn.Linear(middle, hidden))


class DualViewItems(ItemEmbedder):
    """The two views, each ``view_dim`` wide; ``all_items()`` puts them side by side."""

    def __init__(
        self,
        collaborative: SemanticInit,
        semantic: FeatureEmbedder,
        settings: LLMESRConfig,
        neighbours: Optional[UserNeighbours],
    ):
        super().__init__(collaborative.n_items, 2 * collaborative.dim)
        self.view_dim = collaborative.dim
        self.collaborative = collaborative
        self.semantic = semantic
        self.settings = settings
        self.neighbours = neighbours

    def views(self) -> tuple[torch.Tensor, torch.Tensor]:  # 2 x (n_items + 1, view_dim)
        return self.collaborative.all_items(), self.semantic.all_items()

    def all_items(self) -> torch.Tensor:  # (n_items + 1, 2 * view_dim)
        return torch.cat(self.views(), dim=1)


def build_llmesr(
    n_items: int,
    hidden: int,
    inputs: ItemInputs,
    make_adapter: Callable[[int], nn.Module],
    dropout: float,
    settings: LLMESRConfig,
) -> ItemEmbedder:
    assert inputs.features is not None, "the pipeline hands fusions their features"
    features = torch.from_numpy(inputs.features)
    seen = seen_rows(inputs)
    collaborative = SemanticInit(
        torch.from_numpy(semantic_table(np.asarray(inputs.features), hidden)), seen
    )
    semantic = FeatureEmbedder(
        features, two_layer_adapter(features.shape[1], hidden), hidden, 0.0, seen
    )
    if settings.distill_weight > 0:
        assert inputs.neighbours is not None, "the pipeline hands llmesr its similar users"
    return DualViewItems(collaborative, semantic, settings, inputs.neighbours)


FUSIONS.register(
    "llmesr",
    build_llmesr,
    LLMESRConfig,
    requires=("features",),
    help="LLM-ESR: semantic and collaborative views, self-distillation from similar users",
)
