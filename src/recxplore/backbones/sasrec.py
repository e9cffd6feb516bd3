"""SASRec (Kang & McAuley, ICDM 2018): causal self-attention over the item sequence.

Trained on every position at once (position t predicts item t + 1). Inputs are left-padded so
the last position holds the most recent item.
"""

from __future__ import annotations

import math
from typing import Optional

import torch
from torch import nn

from recxplore.adapt.item_embedder import ItemEmbedder
from recxplore.backbones.transformer import (
    Lookup,
    TransformerBlock,
    attention_mask,
    transformer_settings,
)
from recxplore.config import ModelConfig
from recxplore.dropout import Dropout
from recxplore.registry import BACKBONES


class SASRec(nn.Module):
    objective = "causal"
    padding_invariant = True  # padding keys are masked: evaluation may pad less

    def __init__(
        self,
        items: ItemEmbedder,
        *,
        hidden: int,
        layers: int,
        heads: int,
        dropout: float,
        max_len: int,
        attention_dropout: float | None = None,
    ):
        super().__init__()
        assert items.dim == hidden, "the item embedder must output the backbone's hidden size"
        self.items = items
        self.max_len = max_len
        self.scale = math.sqrt(hidden)
        self.positions = nn.Embedding(max_len, hidden)
        # the items' scale (0.02 before the sqrt(hidden) factor), not torch's N(0, 1), under
        # which the positions drowned the items; validation prefers it (docs/evaluation.md)
        nn.init.normal_(self.positions.weight, std=0.02)
        self.drop = Dropout(dropout)
        self.blocks = nn.ModuleList(
            TransformerBlock(
                hidden,
                heads,
                dropout,
                ffn_hidden=hidden,
                activation="gelu",
                attention_dropout=attention_dropout,
            )
            for _ in range(layers)
        )
        self.norm = nn.LayerNorm(hidden)

    def embed(self, seq: torch.Tensor, lookup: Optional[Lookup] = None) -> torch.Tensor:
        # seq: (B, L) left-padded item ids -> (B, L, D) the first block's input; ``lookup``
        # maps ids to item vectors (the item embedder's by default; a dual-view model passes
        # each view's)
        L = seq.shape[1]
        pos = torch.arange(self.max_len - L, self.max_len, device=seq.device)
        vectors = (self.items if lookup is None else lookup)(seq)
        x = vectors * self.scale + self.positions(pos)  # (B, L, D)
        return self.drop(x) * (seq != 0).unsqueeze(-1)

    def encode(self, x: torch.Tensor, seq: torch.Tensor) -> torch.Tensor:
        # x: (B, L, D) from ``embed`` -> (B, L, D) next-item representations
        attend = attention_mask(seq, causal=True)
        for block in self.blocks:
            x = block(x, attend)
        return self.norm(x)

    def forward(self, seq: torch.Tensor) -> torch.Tensor:
        return self.encode(self.embed(seq), seq)

    def user_sequence(self, seq: torch.Tensor) -> torch.Tensor:
        return seq  # the last position of a history already predicts the next item

    def user_vectors(self, seq: torch.Tensor) -> torch.Tensor:
        # seq: (B, L) left-padded histories -> (B, D)
        return self.forward(self.user_sequence(seq))[:, -1]


def build_sasrec(items: ItemEmbedder, m: ModelConfig) -> SASRec:
    return SASRec(items, **transformer_settings(m))


BACKBONES.register(
    "sasrec",
    build_sasrec,
    requires=("heads",),
    help="causal self-attention (Kang & McAuley, 2018)",
    version=2,  # 2: positions start at N(0, 0.02)
)
