"""The adapted features are the item vectors, plus LLMEmb's alignment loss pulling each target
item's vector towards its vector in a frozen ID table pretrained by an ID-only run
(liuqidong07/LLMEmb models/LLMEmb.py: weight 0.01, temperature 2, every target of the batch).

LLMEmb compares raw vectors by dot product; ours start at the ID table's scale (std 0.02), where
dot products would all be about 0 and the loss flat, so each side is first divided by its
table's root-mean-square entry (a constant of the step, not trained through): dot products then
have the size they have between vectors of unit-variance entries. docs/baselines.md lists every
difference."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Optional

import torch
from torch import nn

from recxplore.adapt.inputs import ItemInputs
from recxplore.adapt.item_embedder import FeatureEmbedder, ItemEmbedder
from recxplore.config import option
from recxplore.contrastive import contrastive_loss
from recxplore.registry import FUSIONS


@dataclass(frozen=True, kw_only=True)
class AlignConfig:
    weight: float = option(0.01, "align: weight of the alignment loss (LLMEmb's alpha)", ge=0.0)
    temperature: float = option(2.0, "align: temperature of the alignment loss", gt=0.0)
    max_items: int = option(
        2048,
        "align: most targets of a batch the loss compares; a random subset of them beyond "
        "(LLMEmb compares all; the loss is quadratic in them)",
        ge=2,
    )


def unit_rms(vectors: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
    """``vectors`` divided by the root-mean-square entry of ``table``'s items (row 0 aside)."""
    return vectors / table[1:].detach().pow(2).mean().sqrt().clamp(min=1e-12)


class AlignFusion(FeatureEmbedder):
    id_table: torch.Tensor
    fuses_rows = False  # its loss scales by the whole table's RMS: the loop computes the table

    def __init__(
        self,
        features: torch.Tensor,
        adapter: nn.Module,
        hidden: int,
        dropout: float,
        id_table: torch.Tensor,
        settings: AlignConfig,
    ):
        super().__init__(features, adapter, hidden, dropout)
        assert id_table.shape == (self.n_items + 1, hidden)
        self.register_buffer("id_table", id_table.float(), persistent=False)
        self.settings = settings

    def extra_loss(self, items: torch.Tensor, table: torch.Tensor) -> Optional[torch.Tensor]:
        s = self.settings
        if s.weight == 0:
            return None
        if len(items) > s.max_items:  # the loop seeds torch per epoch: the same subset again
            items = items[torch.randperm(len(items), device=items.device)[: s.max_items]]
        # contrastive_loss runs in float32 whatever the autocast
        ids = unit_rms(self.id_table[items], self.id_table)  # LLMEmb's X (its SASRec table)
        semantic = unit_rms(table[items].float(), table)  # its Y (the adapted features)
        return s.weight * contrastive_loss(ids, semantic, s.temperature)


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
        settings,
    )


FUSIONS.register(
    "align",
    build_align,
    AlignConfig,
    requires=("features", "id_table"),
    help="features aligned to a frozen ID table pretrained by an ID-only run (LLMEmb-style)",
)
