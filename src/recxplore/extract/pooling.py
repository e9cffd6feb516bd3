"""Token aggregation: (B, L, D) hidden states + (B, L) attention mask -> (B, D).

Correct under left and right padding: positions are located from the mask, never assumed.
``eol`` (PromptEOL) wraps the text in a one-word prompt before tokenisation and then takes the
last token, so here it is the same as ``last``.
"""

from __future__ import annotations

import torch

from recxplore.registry import Registry


def mean_pool(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    m = mask.unsqueeze(-1).to(hidden.dtype)  # (B, L, 1)
    return (hidden * m).sum(1) / m.sum(1).clamp(min=1)


def max_pool(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    return hidden.masked_fill(~mask.bool().unsqueeze(-1), float("-inf")).max(1).values


def last_pool(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    L = mask.shape[1]
    last = L - 1 - mask.bool().flip(1).int().argmax(1)  # (B,) index of the last real token
    return hidden[torch.arange(len(hidden), device=hidden.device), last]


def first_pool(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    first = mask.bool().int().argmax(1)  # (B,) index of the first real token
    return hidden[torch.arange(len(hidden), device=hidden.device), first]


POOLINGS: Registry = Registry("pooling")
POOLINGS.register("mean", mean_pool)
POOLINGS.register("max", max_pool)
POOLINGS.register("last", last_pool)
POOLINGS.register("first", first_pool)
POOLINGS.register("eol", last_pool)
