"""AlphaFuse (Hu et al., SIGIR'25, Hugo-Chinn/AlphaFuse): ID embeddings learned in the null
space of the language embeddings.

The features are decomposed by the SVD of their covariance; the item's language vector is its
coordinates on the first ``model.hidden`` singular directions, divided by the square roots of
their singular values (standardised, the authors' default), frozen. A trained ID embedding of
``adapt.alphafuse_null_dim`` dimensions is added to the last ``null_dim`` of those coordinates,
the directions in which the language vectors vary least (with ``adapt.alphafuse_cover`` the
language coordinates there are dropped and the ID fills them). Deviations, each because of how
recxplore trains (docs/baselines.md): the language part is scaled to std 0.02, the ID table's
initial scale; an item never in training gets no ID part.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, Optional

import numpy as np
import torch
from torch import nn

from recxplore.adapt.inputs import ItemInputs
from recxplore.adapt.item_embedder import INIT_STD, ItemEmbedder, seen_rows
from recxplore.config import option
from recxplore.errors import ConfigError
from recxplore.registry import FUSIONS


@dataclass(frozen=True, kw_only=True)
class AlphaFuseConfig:
    null_dim: Optional[int] = option(
        None,
        "alphafuse: dimensions of the ID part, the last ones of the language coordinates "
        "(null: half of model.hidden, the authors' 64 of 128)",
        ge=1,
    )
    standardize: bool = option(
        True, "alphafuse: divide each language coordinate by its singular value's square root"
    )
    cover: bool = option(
        False,
        "alphafuse: the ID part replaces the language coordinates it occupies (false: is added)",
    )
    id_init: Literal["zeros", "normal"] = option(
        "zeros",
        "alphafuse: the ID part's initialisation (zeros: the authors' long-tail setting; "
        "normal: std 0.02)",
    )


def language_coordinates(features: np.ndarray, dim: int, standardize: bool) -> np.ndarray:
    """(n_items + 1, dim): the items' coordinates on the first ``dim`` singular directions of
    the features' covariance (zero-padded beyond the features' rank), standardised if asked,
    scaled to std ``INIT_STD``; row 0 zero."""
    items = features[1:].astype(np.float64)
    centred = items - items.mean(axis=0)
    cov = np.cov(centred, rowvar=False)
    u, s, _ = np.linalg.svd(np.atleast_2d(cov), full_matrices=False)
    keep = min(dim, u.shape[1])
    projection = u[:, :keep]
    if standardize:
        projection = projection / np.sqrt(np.maximum(s[:keep], 1e-12))
    coords = centred @ projection
    if keep < dim:
        coords = np.pad(coords, ((0, 0), (0, dim - keep)))
    coords *= INIT_STD / max(float(coords.std()), 1e-12)
    return np.concatenate([np.zeros((1, dim)), coords]).astype(np.float32)


class AlphaFuse(ItemEmbedder):
    def __init__(
        self,
        language: torch.Tensor,
        settings: AlphaFuseConfig,
        seen: Optional[torch.Tensor] = None,
    ):
        super().__init__(language.shape[0] - 1, language.shape[1])
        self.null_dim = settings.null_dim or max(1, self.dim // 2)
        if self.null_dim > self.dim:
            raise ConfigError(
                [f"adapt.alphafuse_null_dim={self.null_dim}: at most model.hidden={self.dim}"]
            )
        if settings.cover:
            language = language.clone()
            language[:, -self.null_dim :] = 0.0
        self.register_buffer("language", language, persistent=False)
        self.ids = nn.Embedding(self.n_items + 1, self.null_dim, padding_idx=0)
        if settings.id_init == "zeros":
            nn.init.zeros_(self.ids.weight)
        else:
            nn.init.normal_(self.ids.weight, std=INIT_STD)
            with torch.no_grad():
                self.ids.weight[0].zero_()
        self.keep_seen(seen)

    def all_items(self) -> torch.Tensor:
        ids = self.trained_only(self.ids.weight)  # no ID part for an item never in training
        free = self.language[:, : self.dim - self.null_dim]
        return torch.cat([free, self.language[:, self.dim - self.null_dim :] + ids], dim=1)

    @property
    def computes_rows(self) -> bool:
        return True

    def rows(self, ids: torch.Tensor) -> torch.Tensor:
        language, split = self.language[ids], self.dim - self.null_dim
        trained = self.trained_only(self.ids(ids), ids)
        return torch.cat([language[..., :split], language[..., split:] + trained], dim=-1)


def build_alphafuse(
    n_items: int,
    hidden: int,
    inputs: ItemInputs,
    make_adapter: Callable[[int], nn.Module],
    dropout: float,
    settings: AlphaFuseConfig,
) -> ItemEmbedder:
    assert inputs.features is not None, "the pipeline hands fusions their features"
    language = torch.from_numpy(language_coordinates(inputs.features, hidden, settings.standardize))
    return AlphaFuse(language, settings, seen_rows(inputs))


FUSIONS.register(
    "alphafuse",
    build_alphafuse,
    AlphaFuseConfig,
    requires=("features",),
    help="frozen language coordinates + ID embeddings in their null space (AlphaFuse)",
)
