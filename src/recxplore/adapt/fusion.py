"""Item embedders built on frozen LLM features: how the adapted features meet ID embeddings.

- ``replace``: the adapted features are the item vectors (the paper's best with MoE);
- ``concat``: [ID vector ; adapted features] projected back to the hidden size;
- ``add``: ID vector + adapted features;
- ``align``: the adapted features are the item vectors, plus an InfoNCE loss pulling each
  target item's vector towards its vector in a frozen ID table pretrained by an ID-only run
  (LLMEmb's recipe), weighted by ``adapt.align_weight``.

The feature buffer is frozen and not saved in checkpoints (it is rebuilt from the cache); it is
scaled by one scalar to unit mean variance so that adapters start in a sensible range. The
adapter's output is multiplied by a fixed gain chosen at construction so that the initial item
vectors have the ID table's scale (std 0.02): without it, adapted features start ~50x larger
than ID embeddings, the first logits saturate and training collapses to near-uniform scores.
"""

from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from recxplore.adapt.item_embedder import ItemEmbedder

INIT_STD = 0.02  # the ID table's initial scale


class FeatureEmbedder(ItemEmbedder):
    def __init__(self, features: torch.Tensor, adapter: nn.Module, hidden: int, fusion: str,
                 dropout: float, id_table: Optional[torch.Tensor] = None,
                 align_weight: float = 0.0, align_temperature: float = 1.0):
        super().__init__(features.shape[0] - 1, hidden)
        scale = features[1:].var(0).mean().sqrt().clamp(min=1e-8)
        self.register_buffer("features", (features / scale).float(), persistent=False)
        self.adapter = adapter
        with torch.no_grad():
            was_training = adapter.training
            adapter.eval()
            initial = adapter(self.features)[1:].std().clamp(min=1e-8)
            adapter.train(was_training)
        self.register_buffer("gain", INIT_STD / initial)
        self.fusion = fusion
        self.drop = nn.Dropout(dropout)
        if fusion in ("concat", "add"):
            self.ids = nn.Embedding(self.n_items + 1, hidden, padding_idx=0)
            nn.init.normal_(self.ids.weight, std=0.02)
        if fusion == "concat":
            self.merge = nn.Linear(2 * hidden, hidden)
        if fusion == "align":
            assert id_table is not None and id_table.shape == (self.n_items + 1, hidden)
            self.register_buffer("id_table", id_table.float(), persistent=False)
            self.align_weight = align_weight
            self.align_temperature = align_temperature

    def all_items(self) -> torch.Tensor:  # (n_items + 1, hidden)
        semantic = self.adapter(self.drop(self.features)) * self.gain
        if self.fusion == "concat":
            semantic = self.merge(torch.cat([self.ids.weight, semantic], dim=-1))
        elif self.fusion == "add":
            semantic = self.ids.weight + semantic
        pad = torch.zeros_like(semantic[:1])
        return torch.cat([pad, semantic[1:]], dim=0)  # padding maps to the zero vector

    def extra_loss(self, items: torch.Tensor, table: torch.Tensor) -> Optional[torch.Tensor]:
        if self.fusion != "align" or self.align_weight == 0:
            return None
        items = items.unique()
        semantic = F.normalize(table[items], dim=-1)  # (N, D)
        ids = F.normalize(self.id_table[items], dim=-1)  # (N, D)
        logits = semantic @ ids.T / self.align_temperature  # (N, N): in-batch negatives
        target = torch.arange(len(items), device=items.device)
        loss = (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target)) / 2
        return self.align_weight * loss
