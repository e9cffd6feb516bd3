"""A pre-LayerNorm transformer block shared by SASRec (causal) and BERT4Rec (bidirectional)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class TransformerBlock(nn.Module):
    def __init__(
        self, hidden: int, heads: int, dropout: float, ffn_hidden: int, activation: str = "gelu"
    ):
        super().__init__()
        self.heads = heads
        self.dropout = dropout
        self.norm1 = nn.LayerNorm(hidden)
        self.qkv = nn.Linear(hidden, 3 * hidden)
        self.out = nn.Linear(hidden, hidden)
        self.norm2 = nn.LayerNorm(hidden)
        self.ffn = nn.Sequential(
            nn.Linear(hidden, ffn_hidden),
            nn.GELU() if activation == "gelu" else nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(ffn_hidden, hidden),
        )
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, attend: torch.Tensor) -> torch.Tensor:
        # x: (B, L, D); attend: (B, 1, L, L) bool, True where a query may attend to a key
        B, L, D = x.shape
        q, k, v = self.qkv(self.norm1(x)).view(B, L, 3, self.heads, D // self.heads).unbind(2)
        q, k, v = (t.transpose(1, 2) for t in (q, k, v))  # (B, H, L, D/H)
        a = F.scaled_dot_product_attention(
            q, k, v, attn_mask=attend, dropout_p=self.dropout if self.training else 0.0
        )
        x = x + self.drop(self.out(a.transpose(1, 2).reshape(B, L, D)))
        return x + self.drop(self.ffn(self.norm2(x)))


def attention_mask(seq: torch.Tensor, causal: bool) -> torch.Tensor:
    """(B, L) item ids, 0 = padding -> (B, 1, L, L) bool.

    Keys that are padding are hidden; every query may attend to itself, so a padding query never
    has an empty row (its output is discarded anyway).
    """
    L = seq.shape[1]
    allowed = (seq != 0)[:, None, None, :]  # (B, 1, 1, L)
    if causal:
        allowed = allowed & torch.ones(L, L, dtype=torch.bool, device=seq.device).tril()
    return allowed | torch.eye(L, dtype=torch.bool, device=seq.device)
