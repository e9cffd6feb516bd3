"""BERT4Rec (Sun et al., CIKM 2019): bidirectional self-attention trained by masked-item
prediction. The [MASK] token is id ``n_items + 1`` and has its own learned vector, so the item
embedder only ever sees real item ids."""

from __future__ import annotations

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


class BERT4Rec(nn.Module):
    objective = "masked"
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
        self.mask_id = items.n_items + 1
        self.max_len = max_len
        self.mask_vector = nn.Parameter(torch.randn(hidden) * 0.02)
        self.positions = nn.Embedding(max_len, hidden)
        # BERT's initializer range, as the items': at N(0, 1) the positions drown the item
        # vectors (std 0.02) in the input LayerNorm
        nn.init.normal_(self.positions.weight, std=0.02)
        self.norm_in = nn.LayerNorm(hidden)
        self.drop = Dropout(dropout)
        self.blocks = nn.ModuleList(
            TransformerBlock(
                hidden,
                heads,
                dropout,
                ffn_hidden=4 * hidden,
                activation="gelu",
                attention_dropout=attention_dropout,
            )
            for _ in range(layers)
        )
        self.norm = nn.LayerNorm(hidden)

    def embed(self, seq: torch.Tensor, lookup: Optional[Lookup] = None) -> torch.Tensor:
        # seq: (B, L) left-padded ids, mask_id at masked positions -> (B, L, D) the first
        # block's input; ``lookup`` maps real ids to item vectors (see SASRec.embed)
        L = seq.shape[1]
        masked = seq == self.mask_id
        x = (self.items if lookup is None else lookup)(seq.masked_fill(masked, 0))
        x = torch.where(masked.unsqueeze(-1), self.mask_vector, x)
        pos = torch.arange(self.max_len - L, self.max_len, device=seq.device)
        return self.drop(self.norm_in(x + self.positions(pos)))

    def encode(self, x: torch.Tensor, seq: torch.Tensor) -> torch.Tensor:
        attend = attention_mask(seq, causal=False)
        for block in self.blocks:
            x = block(x, attend)
        return self.norm(x)

    def forward(self, seq: torch.Tensor) -> torch.Tensor:
        return self.encode(self.embed(seq), seq)

    def user_sequence(self, seq: torch.Tensor) -> torch.Tensor:
        # Append [MASK] after the history (dropping the oldest item if full): its output
        # predicts the next item
        mask = torch.full_like(seq[:, :1], self.mask_id)
        return torch.cat([seq[:, 1:], mask], dim=1)

    def user_vectors(self, seq: torch.Tensor) -> torch.Tensor:
        return self.forward(self.user_sequence(seq))[:, -1]  # (B, L) -> (B, D)


def build_bert4rec(items: ItemEmbedder, m: ModelConfig) -> BERT4Rec:
    return BERT4Rec(items, **transformer_settings(m))


BACKBONES.register(
    "bert4rec",
    build_bert4rec,
    requires=("heads",),
    help="bidirectional self-attention, masked-item training (Sun et al., 2019)",
    # 2: positions start at N(0, 0.02); 3: patience counted in targets (train.patience_unit)
    version=3,
)
