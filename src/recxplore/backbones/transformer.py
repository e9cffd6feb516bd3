"""A pre-LayerNorm transformer block shared by SASRec (causal) and BERT4Rec (bidirectional)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from recxplore.config import ModelConfig
from recxplore.dropout import Dropout, dropout

Lookup = Callable[[torch.Tensor], torch.Tensor]  # item ids (...,) -> item vectors (..., D)


def transformer_settings(m: ModelConfig) -> dict[str, Any]:
    """The ``model.*`` settings SASRec and BERT4Rec are built from."""
    return {
        "hidden": m.hidden,
        "layers": m.layers,
        "heads": m.heads,
        "dropout": m.dropout,
        "max_len": m.max_len,
        "attention_dropout": m.attention_dropout,
    }


class TransformerBlock(nn.Module):
    def __init__(
        self,
        hidden: int,
        heads: int,
        dropout: float,
        ffn_hidden: int,
        activation: str = "gelu",
        attention_dropout: float | None = None,
    ):
        super().__init__()
        self.heads = heads
        # on the attention weights; None: as ``dropout``. Above 0 it costs CPU SDPA its fused
        # kernel (about 4.5x the attention time at length 200)
        self.attention_dropout = dropout if attention_dropout is None else attention_dropout
        self.norm1 = nn.LayerNorm(hidden)
        self.qkv = nn.Linear(hidden, 3 * hidden)
        self.out = nn.Linear(hidden, hidden)
        self.norm2 = nn.LayerNorm(hidden)
        self.ffn = nn.Sequential(
            nn.Linear(hidden, ffn_hidden),
            nn.GELU() if activation == "gelu" else nn.ReLU(),
            Dropout(dropout),
            nn.Linear(ffn_hidden, hidden),
        )
        self.drop = Dropout(dropout)

    def forward(self, x: torch.Tensor, attend: torch.Tensor) -> torch.Tensor:
        # x: (B, L, D); attend: (B, 1, L, L) bool, True where a query may attend to a key
        B, L, D = x.shape
        q, k, v = self.qkv(self.norm1(x)).view(B, L, 3, self.heads, D // self.heads).unbind(2)
        q, k, v = (t.transpose(1, 2) for t in (q, k, v))  # (B, H, L, D/H)
        if q.dtype == torch.bfloat16 and self.training:
            a = _bfloat16_attention(q, k, v, attend, self.attention_dropout)
        else:
            a = _fused_attention(q, k, v, attend, self.attention_dropout if self.training else 0)
        x = x + self.drop(self.out(a.transpose(1, 2).reshape(B, L, D)))
        return x + self.drop(self.ffn(self.norm2(x)))


def _fused_attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, attend: torch.Tensor, p: float
) -> torch.Tensor:
    """SDPA in float32: on a CPU its bfloat16 kernel is about 2x slower than its float32 one."""
    with torch.autocast(q.device.type, enabled=False):
        a = F.scaled_dot_product_attention(
            q.float(), k.float(), v.float(), attn_mask=attend, dropout_p=p
        )
    return a.to(q.dtype)


def _bfloat16_attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, attend: torch.Tensor, p: float
) -> torch.Tensor:
    """Training attention with bfloat16 matmuls and a float32 softmax: on a CPU at training
    batch sizes about 2x faster than float32 SDPA, and with attention dropout about 2x faster
    than its unfused path (``bench/epoch_profile.py``); at evaluation batch sizes its score
    tensor leaves the cache, so evaluation uses SDPA."""
    scores = (q @ k.transpose(-1, -2)).float() * q.shape[-1] ** -0.5  # (B, H, L, L)
    weights = scores.masked_fill_(~attend, float("-inf")).softmax(-1).to(q.dtype)
    return dropout(weights, p) @ v


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
