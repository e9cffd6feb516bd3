"""The adapted features are the item vectors, plus an InfoNCE loss pulling each target item's
vector towards its vector in a frozen ID table pretrained by an ID-only run (LLMEmb's recipe)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from recxplore.adapt.inputs import ItemInputs
from recxplore.adapt.item_embedder import FeatureEmbedder, ItemEmbedder
from recxplore.config import option
from recxplore.registry import FUSIONS


@dataclass(frozen=True, kw_only=True)
class AlignConfig:
    weight: float = option(0.01, "align: weight of the alignment loss", ge=0.0)
    temperature: float = option(2.0, "align: temperature of the alignment InfoNCE", gt=0.0)


class AlignFusion(FeatureEmbedder):
    def __init__(
        self,
        features: torch.Tensor,
        adapter: nn.Module,
        hidden: int,
        dropout: float,
        id_table: torch.Tensor,
        weight: float,
        temperature: float,
    ):
        super().__init__(features, adapter, hidden, dropout)
        assert id_table.shape == (self.n_items + 1, hidden)
        self.register_buffer("id_table", id_table.float(), persistent=False)
        self.align_weight = weight
        self.align_temperature = temperature

    def extra_loss(self, items: torch.Tensor, table: torch.Tensor) -> Optional[torch.Tensor]:
        if self.align_weight == 0:
            return None
        items = items.unique()
        semantic = F.normalize(table[items], dim=-1)  # (N, D)
        ids = F.normalize(self.id_table[items], dim=-1)  # (N, D)
        logits = semantic @ ids.T / self.align_temperature  # (N, N): in-batch negatives
        target = torch.arange(len(items), device=items.device)
        loss = (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target)) / 2
        return self.align_weight * loss


def build_align(
    n_items: int,
    hidden: int,
    inputs: ItemInputs,
    make_adapter: Callable[[int], nn.Module],
    dropout: float,
    settings: AlignConfig,
) -> ItemEmbedder:
    assert inputs.features is not None and inputs.id_table is not None, "requires= says both"
    features = torch.from_numpy(inputs.features)
    return AlignFusion(
        features,
        make_adapter(features.shape[1]),
        hidden,
        dropout,
        torch.from_numpy(inputs.id_table),
        settings.weight,
        settings.temperature,
    )


FUSIONS.register(
    "align",
    build_align,
    AlignConfig,
    requires=("features", "id_table"),
    help="features aligned to a frozen ID table pretrained by an ID-only run (LLMEmb-style)",
)
