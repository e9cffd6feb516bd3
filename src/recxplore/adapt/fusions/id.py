"""The ID-only baseline: a learned embedding per item; no text, no LLM."""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from recxplore.adapt.inputs import ItemInputs
from recxplore.adapt.item_embedder import IDEmbedder, ItemEmbedder
from recxplore.registry import FUSIONS


def build_id(
    n_items: int,
    hidden: int,
    inputs: ItemInputs,
    make_adapter: Callable[[int], nn.Module],
    dropout: float,
    settings: None,
) -> ItemEmbedder:
    return IDEmbedder(n_items, hidden)


FUSIONS.register("id", build_id, help="ID embeddings only (no text, no LLM)")
