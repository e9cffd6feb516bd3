"""GRU4Rec (Hidasi et al., ICLR 2016) in its sequence form: a GRU over item embeddings.

Inputs are left-padded; padded steps read the zero vector of item 0 before the history starts.
"""

from __future__ import annotations

from typing import Optional

import torch
from torch import nn

from recxplore.adapt.item_embedder import ItemEmbedder
from recxplore.backbones.transformer import Lookup
from recxplore.config import ModelConfig
from recxplore.dropout import Dropout
from recxplore.registry import BACKBONES


class GRU4Rec(nn.Module):
    objective = "causal"
    padding_invariant = False  # its state runs over the left padding

    def __init__(
        self, items: ItemEmbedder, *, hidden: int, layers: int, dropout: float, max_len: int
    ):
        super().__init__()
        assert items.dim == hidden, "the item embedder must output the backbone's hidden size"
        self.items = items
        self.max_len = max_len
        self.drop = Dropout(dropout)
        self.gru = nn.GRU(
            hidden,
            hidden,
            num_layers=layers,
            batch_first=True,
            dropout=dropout if layers > 1 else 0.0,
        )
        self.proj = nn.Linear(hidden, hidden)

    def embed(self, seq: torch.Tensor, lookup: Optional[Lookup] = None) -> torch.Tensor:
        # seq: (B, L) -> (B, L, D) the GRU's input; ``lookup`` as in SASRec.embed
        return self.drop((self.items if lookup is None else lookup)(seq))

    def encode(self, x: torch.Tensor, seq: torch.Tensor) -> torch.Tensor:
        out, _ = self.gru(x)
        return self.proj(self.drop(out))

    def forward(self, seq: torch.Tensor) -> torch.Tensor:
        return self.encode(self.embed(seq), seq)  # (B, L) -> (B, L, D)

    def user_sequence(self, seq: torch.Tensor) -> torch.Tensor:
        return seq

    def user_vectors(self, seq: torch.Tensor) -> torch.Tensor:
        return self.forward(seq)[:, -1]  # (B, D)


def build_gru4rec(items: ItemEmbedder, m: ModelConfig) -> GRU4Rec:
    return GRU4Rec(items, hidden=m.hidden, layers=m.layers, dropout=m.dropout, max_len=m.max_len)


BACKBONES.register("gru4rec", build_gru4rec, help="a GRU over the sequence (Hidasi et al., 2016)")
