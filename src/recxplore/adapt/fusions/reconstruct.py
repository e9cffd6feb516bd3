"""Semantic reconstruction (RLMRec-style), as AlphaFuse's authors run it beside AlphaFuse
(Hugo-Chinn/AlphaFuse ``models/backbone_SASRec.py`` ``RLMRec``, ``train.py``): the item vectors
are a trained ID table, and an auxiliary loss ties each ID vector to the item's frozen language
embedding through a two-layer MLP, ``weight`` x (1 - mean cosine). With ``con`` (their default)
the MLP reconstructs the ID vector from the language embedding; with ``gen`` the language
embedding from the ID vector.

Deviations (docs/baselines.md): the language embeddings are the store's features after
``adapt.pca``, scaled to unit mean variance (the authors multiply theirs by 40); the loss covers
the items that occur in training, whose rows the recommendation loss trains. An item never in
training gets no ID row: with ``con`` its vector is the MLP's reconstruction from its text,
scaled to the mean norm of the trained rows and not trained through (so that the training
softmax, where it is only a negative, cannot push the MLP away from it); with ``gen`` it is zero.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, Optional

import torch
from torch import nn
from torch.nn import functional as F

from recxplore.adapt.inputs import ItemInputs
from recxplore.adapt.item_embedder import (
    INIT_STD,
    ItemEmbedder,
    feature_scale,
    id_table,
    seen_rows,
)
from recxplore.config import option
from recxplore.registry import FUSIONS


@dataclass(frozen=True, kw_only=True)
class ReconstructConfig:
    weight: float = option(
        0.1, "reconstruct: weight of the reconstruction loss (the authors' beta)", ge=0.0
    )
    direction: Literal["con", "gen"] = option(
        "con",
        "reconstruct: con = an MLP maps each item's features to its ID vector (the authors' "
        "default; a cold item is scored from its reconstruction); gen = maps the ID vector to "
        "the features",
    )


class Reconstruct(ItemEmbedder):
    features: torch.Tensor
    warm: torch.Tensor  # (n_items + 1,) bool: the item occurs in training (padding not)

    def __init__(
        self,
        features: torch.Tensor,
        hidden: int,
        settings: ReconstructConfig,
        seen: Optional[torch.Tensor] = None,
    ):
        super().__init__(features.shape[0] - 1, hidden)
        self.keep_seen(seen)
        warm = self.seen[:, 0].bool()
        warm[0] = False  # padding is neither warm nor cold
        self.register_buffer("warm", warm, persistent=False)
        self.has_cold = not bool(warm[1:].all())
        self.settings = settings
        self.table = id_table(self.n_items, hidden, INIT_STD)
        features = features / feature_scale(features)
        self.register_buffer("features", features.float(), persistent=False)
        language = features.shape[1]
        middle = (language + hidden) // 2
        sizes = (language, hidden) if settings.direction == "con" else (hidden, language)
        self.reconstructor = nn.Sequential(
            nn.Linear(sizes[0], middle), nn.LeakyReLU(), nn.Linear(middle, sizes[1])
        )

    def _cold(self, ids: Optional[torch.Tensor] = None) -> Optional[torch.Tensor]:
        """The vectors of ``ids`` (all items when None) as items never in training get them:
        the reconstruction from the text at the trained rows' mean norm (``con``), zero for the
        others; None when every item is in training or there is no text route (``gen``)."""
        if self.settings.direction == "gen" or not self.has_cold:
            return None
        index = torch.arange(self.n_items + 1, device=self.features.device) if ids is None else ids
        cold = ~self.warm[index] & (index != 0)
        with torch.no_grad():
            norm = self.table.weight[self.warm].norm(dim=1).mean()
            made = F.normalize(self.reconstructor(self.features[index]), dim=-1) * norm
        return made * cold.unsqueeze(-1).to(made.dtype)

    def all_items(self) -> torch.Tensor:
        vectors = self.trained_only(self.table.weight)
        cold = self._cold()
        return vectors if cold is None else vectors + cold

    @property
    def computes_rows(self) -> bool:
        return True

    def rows(self, ids: torch.Tensor) -> torch.Tensor:
        vectors = self.trained_only(self.table(ids), ids)
        cold = self._cold(ids)
        return vectors if cold is None else vectors + cold

    def extra_loss(self, items: torch.Tensor, table: torch.Tensor) -> Optional[torch.Tensor]:
        if self.settings.weight == 0:
            return None
        ids, language = self.table.weight[self.warm], self.features[self.warm]
        if self.settings.direction == "con":
            made, target = self.reconstructor(language), ids
        else:
            made, target = self.reconstructor(ids), language
        cosine = F.cosine_similarity(made.float(), target.float(), dim=-1)
        return self.settings.weight * (1 - cosine.mean())


def build_reconstruct(
    n_items: int,
    hidden: int,
    inputs: ItemInputs,
    make_adapter: Callable[[int], nn.Module],
    dropout: float,
    settings: ReconstructConfig,
) -> ItemEmbedder:
    assert inputs.features is not None, "the pipeline hands fusions their features"
    return Reconstruct(torch.from_numpy(inputs.features), hidden, settings, seen_rows(inputs))


FUSIONS.register(
    "reconstruct",
    build_reconstruct,
    ReconstructConfig,
    requires=("features",),
    help="ID embeddings tied to the features by an MLP reconstruction loss (RLMRec-style, "
    "as in AlphaFuse's repository)",
)
