"""Next-item losses on hidden states at target positions.

h: (N, D) predicted representations; targets: (N,) item ids >= 1; table: (n_items + 1, D).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from recxplore.registry import LOSSES


class _ChunkedSoftmaxCrossEntropy(torch.autograd.Function):
    """Mean softmax cross-entropy over all items without materialising the (N, n_items) logits.

    Logits are computed chunk by chunk in the forward pass (keeping only each row's
    log-sum-exp) and recomputed in the backward pass, in chunks small enough to stay in cache.
    On a CPU this is faster than ``F.cross_entropy`` on full logits and never holds the
    (N, n_items) matrix (``bench/ce_loss.py`` measures it).
    """

    @staticmethod
    def forward(ctx, h, table, targets, chunk, dtype):
        # h: (N, D), table: (n + 1, D), targets: (N,); the matmuls run in ``dtype``, the
        # softmax in float32
        n = h.shape[0]
        lse = torch.empty(n, dtype=torch.float32, device=h.device)
        pos = torch.empty(n, dtype=torch.float32, device=h.device)
        hd, td = h.to(dtype), table.to(dtype)
        for s in range(0, n, chunk):
            logits = (hd[s : s + chunk] @ td.T).float()  # (C, n + 1)
            logits[:, 0] = float("-inf")  # padding is never a class
            lse[s : s + chunk] = torch.logsumexp(logits, 1)
            pos[s : s + chunk] = logits.gather(1, targets[s : s + chunk, None])[:, 0]
        ctx.save_for_backward(h, table, targets, lse)
        ctx.chunk, ctx.dtype = chunk, dtype
        return (lse - pos).mean()

    @staticmethod
    def backward(ctx, grad):
        h, table, targets, lse = ctx.saved_tensors
        n, chunk, dtype = h.shape[0], ctx.chunk, ctx.dtype
        hd, td = h.to(dtype), table.to(dtype)
        grad_h = torch.empty_like(h)
        grad_table = torch.zeros_like(table)  # summed over chunks in float32
        scale = grad / n
        for s in range(0, n, chunk):
            hc = hd[s : s + chunk]
            logits = (hc @ td.T).float()
            logits[:, 0] = float("-inf")
            probs = torch.exp_(logits.sub_(lse[s : s + chunk, None]))  # softmax, in place
            rows = torch.arange(len(hc), device=h.device)
            probs[rows, targets[s : s + chunk]] -= 1.0
            probs = probs.mul_(scale).to(dtype)
            grad_h[s : s + chunk] = probs @ td
            if dtype == grad_table.dtype:
                grad_table.addmm_(probs.T, hc)
            else:
                grad_table.add_(probs.T @ hc)
        return grad_h, grad_table, None, None, None


def cross_entropy(
    h: torch.Tensor,
    targets: torch.Tensor,
    table: torch.Tensor,
    generator: torch.Generator | None = None,
    num_negatives: int = 0,
) -> torch.Tensor:
    """Softmax over the whole catalogue (Klenitskiy & Vasilev, 2023)."""
    chunk = max(64, (1 << 19) // table.shape[0])  # about 2 MB of fp32 logits: stays in cache
    kind = h.device.type
    # under bfloat16 autocast its matmuls run in bfloat16 too (the Function runs them itself)
    low = torch.is_autocast_enabled(kind) and torch.get_autocast_dtype(kind) == torch.bfloat16
    dtype = torch.bfloat16 if low else h.dtype
    with torch.autocast(kind, enabled=False):
        return _ChunkedSoftmaxCrossEntropy.apply(h.float(), table.float(), targets, chunk, dtype)


def _uniform_excluding(
    targets: torch.Tensor, n_items: int, k: int, generator: torch.Generator | None
) -> torch.Tensor:
    """(N, k) items drawn uniformly from 1..n_items, never the row's target."""
    if n_items < 2:
        raise ValueError("negative sampling needs at least 2 items in the catalogue")
    draw = torch.randint(1, n_items, (len(targets), k), generator=generator, device=targets.device)
    return draw + (draw >= targets[:, None]).long()  # skip over the target


def binary_cross_entropy(
    h: torch.Tensor,
    targets: torch.Tensor,
    table: torch.Tensor,
    generator: torch.Generator | None = None,
    num_negatives: int = 1,
) -> torch.Tensor:
    """The paper's loss: positive vs ``num_negatives`` uniform negatives per position."""
    negs = _uniform_excluding(targets, table.shape[0] - 1, num_negatives, generator)
    pos = (h * table[targets]).sum(-1)  # (N,)
    neg = torch.einsum("nd,nkd->nk", h, table[negs])  # (N, k)
    pos_loss = F.binary_cross_entropy_with_logits(pos, torch.ones_like(pos), reduction="none")
    neg_loss = F.binary_cross_entropy_with_logits(neg, torch.zeros_like(neg), reduction="none")
    return (pos_loss + neg_loss.sum(1)).mean()


def sampled_softmax(
    h: torch.Tensor,
    targets: torch.Tensor,
    table: torch.Tensor,
    generator: torch.Generator | None = None,
    num_negatives: int = 256,
) -> torch.Tensor:
    """Softmax over the target and ``num_negatives`` uniform negatives shared by the batch."""
    n_items = table.shape[0] - 1
    negs = torch.randint(1, n_items + 1, (num_negatives,), generator=generator, device=h.device)
    pos = (h * table[targets]).sum(-1, keepdim=True)  # (N, 1)
    neg = h @ table[negs].T  # (N, k)
    neg = neg.masked_fill(negs[None, :] == targets[:, None], float("-inf"))  # accidental hits
    logits = torch.cat([pos, neg], dim=1)
    return F.cross_entropy(logits, torch.zeros(len(h), dtype=torch.long, device=h.device))


def in_batch_softmax(
    h: torch.Tensor,
    targets: torch.Tensor,
    table: torch.Tensor,
    generator: torch.Generator | None = None,
    num_negatives: int = 0,
    log_q: torch.Tensor | None = None,
) -> torch.Tensor:
    """Softmax over the batch's distinct targets, each logit less the log of how often that
    item is a training target (the logQ correction of Yi et al., RecSys'19): the batch samples
    negatives by popularity, and without the correction popular items are pushed down too far.
    Costs the batch's targets, not the catalogue: the loss for catalogues a full softmax does
    not fit."""
    items, position = torch.unique(targets, return_inverse=True)  # (M,), (N,)
    logits = h @ table[items].T  # (N, M)
    if log_q is not None:
        logits = logits - log_q[items][None, :]
    return F.cross_entropy(logits, position)


# "whole_table": the loss reads every item's vector each step; the others read only the rows
# they index (targets, negatives), which item embedders that can compute rows alone then give
LOSSES.register("ce", cross_entropy, help="softmax over all items", requires=("whole_table",))
LOSSES.register(
    "bce",
    binary_cross_entropy,
    help="positive vs train.num_negatives random negatives per position (the paper)",
)
LOSSES.register(
    "sampled",
    sampled_softmax,
    help="softmax over train.num_negatives uniform negatives shared by the batch",
)
LOSSES.register(
    "in_batch",
    in_batch_softmax,
    help="softmax over the batch's targets with the logQ popularity correction",
    requires=("log_q",),
)
DEFAULT_NEGATIVES = {"ce": 0, "bce": 1, "sampled": 256, "in_batch": 0}


def log_item_frequency(seqs: list[Any], n_items: int) -> torch.Tensor:
    """(n_items + 1,) log of each item's share of the training interactions, which is how
    often a batch holds it as a target (every item counted once more, so none is infinitely
    rare)."""
    counts = torch.ones(n_items + 1)
    for seq in seqs:
        counts.index_add_(0, torch.as_tensor(seq, dtype=torch.long), torch.ones(len(seq)))
    return (counts / counts.sum()).log()
