"""GRU4Rec (Hidasi et al., ICLR 2016) in its sequence form: a GRU over item embeddings.

Inputs are left-padded; padded steps read the zero vector of item 0 before the history starts.
"""

from __future__ import annotations

import torch
from torch import nn

from recxplore.adapt.item_embedder import ItemEmbedder
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

    def forward(self, seq: torch.Tensor) -> torch.Tensor:
        # seq: (B, L) -> (B, L, D)
        out, _ = self.gru(self.drop(self.items(seq)))
        return self.proj(self.drop(out))

    def user_vectors(self, seq: torch.Tensor) -> torch.Tensor:
        return self.forward(seq)[:, -1]  # (B, D)


def build_gru4rec(items: ItemEmbedder, m: ModelConfig) -> GRU4Rec:
    return GRU4Rec(items, hidden=m.hidden, layers=m.layers, dropout=m.dropout, max_len=m.max_len)


BACKBONES.register("gru4rec", build_gru4rec, help="a GRU over the sequence (Hidasi et al., 2016)")
