"""An ID table initialised from the items' LLM features, then trained freely (Harte et al.,
"Leveraging Large Language Models for Sequential Recommendation", RecSys'23; LLMInit, 2025).

The features (after ``adapt.pca``) are reduced by PCA to ``model.hidden`` components, as
Harte et al. reduce their embeddings to the model's size (dh-r/LLM-Sequential-Recommendation,
``main/grurec/grurec_with_embeddings.py``); unlike them the table is then scaled to the ID
table's initial scale (std 0.02), since rows at the features' own scale saturate the first
logits here (see ``FeatureEmbedder``). No adapter is used. An item never in training keeps its
initial row: with a full softmax its trained row would only have been pushed down as a negative.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Optional

import numpy as np
import torch
from torch import nn

from recxplore.adapt.inputs import ItemInputs
from recxplore.adapt.item_embedder import INIT_STD, ItemEmbedder, seen_rows
from recxplore.registry import FUSIONS


def semantic_table(features: np.ndarray, dim: int) -> np.ndarray:
    """(n_items + 1, dim): the items' features (row 0 padding) reduced by PCA to ``dim``
    components (zero-padded when there are fewer), scaled to std ``INIT_STD``; row 0 zero."""
    items = features[1:].astype(np.float64)
    centred = items - items.mean(axis=0)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    reduced = centred @ vt[:dim].T
    if reduced.shape[1] < dim:
        reduced = np.pad(reduced, ((0, 0), (0, dim - reduced.shape[1])))
    reduced *= INIT_STD / max(float(reduced.std()), 1e-12)
    return np.concatenate([np.zeros((1, dim)), reduced]).astype(np.float32)


class SemanticInit(ItemEmbedder):
    def __init__(self, table: torch.Tensor, seen: Optional[torch.Tensor] = None):
        super().__init__(table.shape[0] - 1, table.shape[1])
        self.table = nn.Embedding.from_pretrained(table.clone(), freeze=False, padding_idx=0)
        self.register_buffer("initial", table.clone(), persistent=False)
        self.keep_seen(seen)

    def all_items(self) -> torch.Tensor:
        return self.trained_only(self.table.weight) + self.initial * (1 - self.seen)

    @property
    def computes_rows(self) -> bool:
        return True

    def rows(self, ids: torch.Tensor) -> torch.Tensor:
        return self.trained_only(self.table(ids), ids) + self.initial[ids] * (1 - self.seen[ids])


def build_semantic_init(
    n_items: int,
    hidden: int,
    inputs: ItemInputs,
    make_adapter: Callable[[int], nn.Module],
    dropout: float,
    settings: Any,
) -> ItemEmbedder:
    assert inputs.features is not None, "the pipeline hands fusions their features"
    return SemanticInit(
        torch.from_numpy(semantic_table(inputs.features, hidden)), seen_rows(inputs)
    )


FUSIONS.register(
    "semantic_init",
    build_semantic_init,
    requires=("features",),
    help="an ID table initialised from PCA of the features, then trained (Harte et al.)",
)
