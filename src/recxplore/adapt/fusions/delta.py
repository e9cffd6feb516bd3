"""Adapted features plus a trainable per-item delta that starts at zero ("Let It Go? Not Quite",
Pembek et al., RecSys'25: content initialisation with a trainable delta). Warm items learn a
correction; an item never in training keeps a zero delta, so its vector is its adapted features.

The paper bounds how far the delta may take an item from its content vector; here its size is
held by an L2 penalty (``adapt.delta_l2``) and by AdamW's ``train.weight_decay``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Optional

import torch
from torch import nn

from recxplore.adapt.inputs import ItemInputs
from recxplore.adapt.item_embedder import INIT_STD, FeatureEmbedder, ItemEmbedder, seen_rows
from recxplore.config import option
from recxplore.registry import FUSIONS


@dataclass(frozen=True, kw_only=True)
class DeltaConfig:
    l2: float = option(
        0.0,
        "delta: weight of the penalty on the batch's target deltas (their mean squared norm, "
        "in units of an ID vector's at initialisation: hidden x 0.02^2)",
        ge=0.0,
    )


class DeltaFusion(FeatureEmbedder):
    def __init__(
        self,
        features: torch.Tensor,
        adapter: nn.Module,
        hidden: int,
        dropout: float,
        settings: DeltaConfig,
        seen: Optional[torch.Tensor] = None,
    ):
        super().__init__(features, adapter, hidden, dropout, seen)
        self.delta = nn.Parameter(torch.zeros(self.n_items + 1, hidden))
        self.settings = settings

    def fuse(self, semantic: torch.Tensor, ids: Optional[torch.Tensor] = None) -> torch.Tensor:
        rows = self.delta if ids is None else self.delta[ids]
        return semantic + self.trained_only(rows, ids)

    def extra_loss(self, items: torch.Tensor, table: torch.Tensor) -> Optional[torch.Tensor]:
        if self.settings.l2 == 0:
            return None
        squared = self.delta[items].float().pow(2).sum(-1).mean()
        return self.settings.l2 * squared / (self.dim * INIT_STD**2)


def build_delta(
    n_items: int,
    hidden: int,
    inputs: ItemInputs,
    make_adapter: Callable[[int], nn.Module],
    dropout: float,
    settings: DeltaConfig,
) -> ItemEmbedder:
    assert inputs.features is not None, "the pipeline hands fusions their features"
    features = torch.from_numpy(inputs.features)
    adapter = make_adapter(features.shape[1])
    return DeltaFusion(features, adapter, hidden, dropout, settings, seen_rows(inputs))


FUSIONS.register(
    "delta",
    build_delta,
    DeltaConfig,
    requires=("features",),
    help="adapted features + a trained per-item delta from zero (cold items: features alone)",
)
