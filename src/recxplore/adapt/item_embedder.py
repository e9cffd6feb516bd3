"""Item embedders: modules mapping item indices to vectors. Backbones see only this interface.

Index 0 is padding and maps to the zero vector. ``all_items()`` returns the (n_items + 1, D)
table used both to embed input sequences and to score candidates. ``rows(ids)`` gives the
vectors of some items alone: a training loss that reads only the rows it indexes (sampled
negatives, in-batch negatives) then costs the batch, not the catalogue (``ItemRows``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Optional

import torch
from torch import nn

from recxplore.adapt.inputs import ItemInputs
from recxplore.dropout import Dropout


class ItemEmbedder(nn.Module):
    """Base class. Subclasses implement ``all_items``; lookups index into it, or, once training
    has set ``by_rows`` (and ``computes_rows`` says the embedder can), compute their rows alone."""

    by_rows = False  # set by the training loop when its loss reads only the rows it indexes

    def __init__(self, n_items: int, dim: int):
        super().__init__()
        self.n_items = n_items
        self.dim = dim

    def all_items(self) -> torch.Tensor:  # (n_items + 1, D)
        raise NotImplementedError

    @property
    def computes_rows(self) -> bool:
        """Whether ``rows`` computes only the rows asked for (not the whole table first)."""
        return False

    def rows(self, ids: torch.Tensor) -> torch.Tensor:  # (...,) -> (..., D)
        """The vectors of ``ids``; padding (0) is the zero vector."""
        return self.all_items()[ids]

    def forward(self, items: torch.Tensor) -> torch.Tensor:  # (...,) -> (..., D)
        return self.rows(items) if self.by_rows else self.all_items()[items]

    def extra_loss(self, items: torch.Tensor, table: torch.Tensor) -> Optional[torch.Tensor]:
        """An auxiliary loss on the given items, given this step's table (``all_items()``, or
        its ``ItemRows`` when training computes rows alone) (e.g. ID/text alignment); None by
        default."""
        return None

    def keep_seen(self, seen: Optional[torch.Tensor]) -> None:
        """Remember which items occur in training (all, when None): a trained per-item part (an
        ID row, a delta) is used for these only, so an item never trained on is scored from its
        text alone (``trained_only``)."""
        if seen is None:
            seen = torch.ones(self.n_items + 1, dtype=torch.bool)
        self.register_buffer("seen", seen.float().unsqueeze(1), persistent=False)

    def trained_only(self, rows: torch.Tensor, ids: Optional[torch.Tensor] = None) -> torch.Tensor:
        """A per-item trained table (or its rows of ``ids``) with the rows of items never in
        training zeroed."""
        return rows * (self.seen if ids is None else self.seen[ids])


class ItemRows:
    """One training step's item table, computed only where a loss indexes it (the targets, the
    sampled negatives): ``table[ids]``, ``table.shape`` and ``table.take(index)`` (the table
    of the items ``index`` lists, in that order) as on the full table."""

    def __init__(self, items: ItemEmbedder, index: Optional[torch.Tensor] = None):
        self.items, self.index = items, index

    @property
    def shape(self) -> tuple[int, int]:
        rows = self.items.n_items + 1 if self.index is None else len(self.index)
        return rows, self.items.dim

    def __getitem__(self, ids: torch.Tensor) -> torch.Tensor:
        return self.items.rows(ids if self.index is None else self.index[ids])

    def take(self, index: torch.Tensor) -> ItemRows:
        return ItemRows(self.items, index if self.index is None else self.index[index])


def id_table(n_items: int, dim: int, init_std: float = 0.02) -> nn.Embedding:
    """A learned ID table: row 0 padding (zero), the items' rows N(0, ``init_std``)."""
    table = nn.Embedding(n_items + 1, dim, padding_idx=0)
    nn.init.normal_(table.weight, std=init_std)
    with torch.no_grad():
        table.weight[0].zero_()
    return table


def feature_scale(features: torch.Tensor) -> torch.Tensor:
    """The scalar that brings the items' features (row 0 padding aside) to unit mean variance."""
    return features[1:].var(0).mean().sqrt().clamp(min=1e-8)


class IDEmbedder(ItemEmbedder):
    """A learned ID embedding table: the ID-only baseline (``adapt.fusion=id``)."""

    def __init__(self, n_items: int, dim: int, init_std: float = 0.02):
        super().__init__(n_items, dim)
        self.table = id_table(n_items, dim, init_std)

    def all_items(self) -> torch.Tensor:
        return self.table.weight

    @property
    def computes_rows(self) -> bool:
        return True

    def rows(self, ids: torch.Tensor) -> torch.Tensor:
        return self.table(ids)

    def forward(self, items: torch.Tensor) -> torch.Tensor:
        return self.table(items)


INIT_STD = 0.02  # the ID table's initial scale


def seen_rows(inputs: ItemInputs) -> Optional[torch.Tensor]:
    return None if inputs.seen is None else torch.from_numpy(inputs.seen)


class FeatureEmbedder(ItemEmbedder):
    """Base of the fusions built on frozen LLM features: ``semantic()`` is the adapted features.

    The feature buffer is frozen and not saved in checkpoints (it is rebuilt from the cache); it
    is scaled by one scalar to unit mean variance so that adapters start in a sensible range.
    The adapter's output is multiplied by a fixed gain chosen at construction so that the
    initial item vectors have the ID table's scale (std 0.02): without it, adapted features
    start ~50x larger than ID embeddings, the first logits saturate and training collapses to
    near-uniform scores.
    """

    def __init__(
        self,
        features: torch.Tensor,
        adapter: nn.Module,
        hidden: int,
        dropout: float,
        seen: Optional[torch.Tensor] = None,
    ):
        super().__init__(features.shape[0] - 1, hidden)
        self.keep_seen(seen)
        scale = feature_scale(features)
        self.register_buffer("features", (features / scale).float(), persistent=False)
        # kept so that new items' features can be scaled alike (``recxplore add-items``)
        self.register_buffer("feature_scale", scale.float(), persistent=False)
        self.adapter = adapter
        with torch.no_grad():
            was_training = adapter.training
            adapter.eval()
            initial = adapter(self.features)[1:].std().clamp(min=1e-8)
            adapter.train(was_training)
        self.register_buffer("gain", INIT_STD / initial)
        self.drop = Dropout(dropout)

    @classmethod
    def build(
        cls,
        n_items: int,
        hidden: int,
        inputs: ItemInputs,
        make_adapter: Callable[[int], nn.Module],
        dropout: float,
        settings: Any,
    ) -> ItemEmbedder:
        """The fusion registry's builder for fusions that need nothing but the features."""
        assert inputs.features is not None, "the pipeline hands fusions their features"
        features = torch.from_numpy(inputs.features)
        return cls(features, make_adapter(features.shape[1]), hidden, dropout, seen_rows(inputs))

    def semantic(self) -> torch.Tensor:  # (n_items + 1, hidden)
        return self.adapter(self.drop(self.features)) * self.gain

    def fuse(self, semantic: torch.Tensor, ids: Optional[torch.Tensor] = None) -> torch.Tensor:
        """How the adapted features meet the IDs, for all items or the (flat) ``ids``; the
        semantic vectors alone by default."""
        return semantic

    fuses_rows = True  # ``fuse`` takes ids; a fusion whose extra loss needs the table says no

    @property
    def computes_rows(self) -> bool:
        # an adapter reading each item's features alone (not PQ, which reads all codes)
        return self.fuses_rows and getattr(self.adapter, "row_wise", False)

    def rows(self, ids: torch.Tensor) -> torch.Tensor:
        if not self.computes_rows:
            return super().rows(ids)
        flat = ids.reshape(-1)
        fused = self.fuse(self.adapter(self.drop(self.features[flat])) * self.gain, flat)
        fused = fused * (flat != 0).unsqueeze(1).to(fused.dtype)  # padding maps to zero
        return fused.reshape(*ids.shape, fused.shape[-1])

    def all_items(self) -> torch.Tensor:  # (n_items + 1, hidden)
        fused = self.fuse(self.semantic())
        pad = torch.zeros_like(fused[:1])
        return torch.cat([pad, fused[1:]], dim=0)  # padding maps to the zero vector
