"""Next-item losses on hidden states at target positions.

h: (N, D) predicted representations; targets: (N,) item ids >= 1; table: (n_items + 1, D).
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F

from recxplore.registry import Registry


def cross_entropy(h: torch.Tensor, targets: torch.Tensor, table: torch.Tensor,
                  generator: torch.Generator | None = None, num_negatives: int = 0) -> torch.Tensor:
    """Softmax over the whole catalogue (Klenitskiy & Vasilev, 2023)."""
    logits = h @ table.T  # (N, n_items + 1)
    logits[:, 0] = float("-inf")
    return F.cross_entropy(logits, targets)


def _uniform_excluding(targets: torch.Tensor, n_items: int, k: int,
                       generator: torch.Generator | None) -> torch.Tensor:
    """(N, k) items drawn uniformly from 1..n_items, never the row's target."""
    if n_items < 2:
        raise ValueError("negative sampling needs at least 2 items in the catalogue")
    draw = torch.randint(1, n_items, (len(targets), k), generator=generator,
                         device=targets.device)
    return draw + (draw >= targets[:, None]).long()  # skip over the target


def binary_cross_entropy(h: torch.Tensor, targets: torch.Tensor, table: torch.Tensor,
                         generator: torch.Generator | None = None,
                         num_negatives: int = 1) -> torch.Tensor:
    """The paper's loss: positive vs ``num_negatives`` uniform negatives per position."""
    negs = _uniform_excluding(targets, table.shape[0] - 1, num_negatives, generator)
    pos = (h * table[targets]).sum(-1)  # (N,)
    neg = torch.einsum("nd,nkd->nk", h, table[negs])  # (N, k)
    pos_loss = F.binary_cross_entropy_with_logits(pos, torch.ones_like(pos), reduction="none")
    neg_loss = F.binary_cross_entropy_with_logits(neg, torch.zeros_like(neg), reduction="none")
    return (pos_loss + neg_loss.sum(1)).mean()


def sampled_softmax(h: torch.Tensor, targets: torch.Tensor, table: torch.Tensor,
                    generator: torch.Generator | None = None,
                    num_negatives: int = 256) -> torch.Tensor:
    """Softmax over the target and ``num_negatives`` uniform negatives shared by the batch."""
    n_items = table.shape[0] - 1
    negs = torch.randint(1, n_items + 1, (num_negatives,), generator=generator, device=h.device)
    pos = (h * table[targets]).sum(-1, keepdim=True)  # (N, 1)
    neg = h @ table[negs].T  # (N, k)
    neg = neg.masked_fill(negs[None, :] == targets[:, None], float("-inf"))  # accidental hits
    logits = torch.cat([pos, neg], dim=1)
    return F.cross_entropy(logits, torch.zeros(len(h), dtype=torch.long, device=h.device))


LOSSES: Registry[Callable[..., torch.Tensor]] = Registry("loss")
LOSSES.register("ce", cross_entropy)
LOSSES.register("bce", binary_cross_entropy)
LOSSES.register("sampled", sampled_softmax)
DEFAULT_NEGATIVES = {"ce": 0, "bce": 1, "sampled": 256}
