"""Rank each user's target among all items (full) and among sampled negatives (sampled).

Ties count against the target: rank = 1 + number of other candidates scoring at least as high.
Padding (item 0) never competes. With ``mask_history`` the items of the input sequence are
removed from full ranking, except the target itself.
"""

from __future__ import annotations

from typing import Optional

import numpy as np
import torch

from recxplore.data.split import EvalSet
from recxplore.runtime import autocast


def left_pad(seqs: list[np.ndarray], max_len: int) -> np.ndarray:
    """The last ``max_len`` items of each sequence, right-aligned, 0 on the left."""
    out = np.zeros((len(seqs), max_len), dtype=np.int64)
    for row, seq in enumerate(seqs):
        tail = seq[-max_len:]
        if len(tail):
            out[row, -len(tail) :] = tail
    return out


def _no_nan(scores: torch.Tensor) -> torch.Tensor:
    """NaN scores as -inf (ranked last); -inf stays -inf (torch's default makes it finite)."""
    return torch.nan_to_num(scores, nan=float("-inf"), neginf=float("-inf"))


def ranks_from_scores(
    scores: torch.Tensor, targets: torch.Tensor, negatives: Optional[torch.Tensor] = None
) -> torch.Tensor:
    """scores: (B, n_items + 1) with padding/masked entries at -inf; targets: (B,).

    Returns 1-based pessimistic ranks (B,) among all items, or among target + negatives (B, N)
    when ``negatives`` is given. A NaN score ranks last.
    """
    scores = _no_nan(scores)
    target = scores.gather(1, targets[:, None])  # (B, 1)
    if negatives is None:
        others = scores.scatter(1, targets[:, None], float("-inf"))
        worst = scores.shape[1] - 1
    else:
        others = scores.gather(1, negatives)
        others = others.masked_fill(negatives == 0, float("-inf"))
        worst = int(negatives.shape[1]) + 1
    beaten = (others >= target) & (others > float("-inf"))
    ranks = 1 + beaten.sum(1)
    # A -inf target loses to every real candidate.
    dead = torch.isneginf(target[:, 0])
    if dead.any():
        real = (others > float("-inf")).sum(1)
        ranks = torch.where(dead, 1 + real, ranks)
    return ranks.clamp(max=max(worst, 1))


def chunked_full_ranks(
    users: torch.Tensor,
    table: torch.Tensor,
    targets: torch.Tensor,
    history: Optional[torch.Tensor],
    chunk: int,
) -> torch.Tensor:
    """The full ranks ``ranks_from_scores`` gives for ``users @ table.T`` (padding out, the
    ``history`` items out but the target), scoring ``chunk`` items at a time: memory is
    B x chunk. users (B, D); table (n_items + 1, D); targets (B,); history (B, H), 0 = none."""
    target = _no_nan((users * table[targets]).sum(-1))[:, None]
    beaten = torch.zeros(len(users), dtype=torch.long, device=users.device)
    real = torch.zeros_like(beaten)
    dead_any = bool(torch.isneginf(target).any())  # only then are the real candidates counted
    n = table.shape[0]
    for start in range(1, n, chunk):  # item 0 (padding) never competes
        block = users @ table[start : start + chunk].T
        # the target's own column out (an index per user, not a comparison per item)
        mine = ((targets >= start) & (targets < start + block.shape[1])).nonzero().flatten()
        block[mine, targets[mine] - start] = float("-inf")
        # NaN >= anything is false: a NaN score never beats the target, as if it were -inf
        beaten += (block >= target).sum(1)
        if dead_any:
            real += (block > float("-inf")).sum(1)
    if history is not None:  # take back what the history's items beat (each item once)
        h = torch.sort(history, dim=1).values
        first = torch.ones_like(h, dtype=torch.bool)
        first[:, 1:] = h[:, 1:] != h[:, :-1]
        own = (h > 0) & first & (h != targets[:, None])
        scores = _no_nan((users[:, None, :] * table[h]).sum(-1))
        finite = (scores > float("-inf")) & own
        beaten -= ((scores >= target) & finite).sum(1)
        real -= finite.sum(1)
    ranks = 1 + beaten
    dead = torch.isneginf(target[:, 0])  # a -inf target loses to every real candidate
    ranks = torch.where(dead, 1 + real, ranks)
    return ranks.clamp(max=max(n - 1, 1))


def sampled_ranks(
    users: torch.Tensor, table: torch.Tensor, targets: torch.Tensor, negatives: torch.Tensor
) -> torch.Tensor:
    """The sampled ranks ``ranks_from_scores`` gives, scoring only the target and negatives."""
    candidates = torch.cat([targets[:, None], negatives], dim=1)  # (B, 1 + N)
    scores = (users[:, None, :] * table[candidates]).sum(-1)
    scores = scores.masked_fill(candidates == 0, float("-inf"))  # padding negatives
    columns = torch.arange(1, candidates.shape[1], device=users.device).expand_as(negatives)
    return ranks_from_scores(scores, torch.zeros_like(targets), columns)


@torch.inference_mode()
def rank_users(
    model: torch.nn.Module,
    data: EvalSet,
    negatives: np.ndarray,
    *,
    max_len: int,
    batch_size: int,
    mask_history: bool,
    device: torch.device,
    precision: str = "float32",
    item_chunk: Optional[int] = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Full and sampled ranks (1-based) of every user's target. The model runs in
    ``precision``; scores are float32, so bfloat16 rounding makes no ties."""
    was_training = model.training
    model.eval()
    with autocast(device, precision):
        table = model.items.all_items().float()  # (n_items + 1, D), once per evaluation
    # A model whose outputs ignore left padding (attention masks it) sees users sorted by
    # history length, each batch padded to one more than its longest history (BERT4Rec drops
    # the first column for its [MASK]); ranks go back to the users' order at the end.
    trim = getattr(model, "padding_invariant", False)
    lengths = [min(len(s), max_len) for s in data.inputs]
    order = np.argsort(lengths, kind="stable") if trim else np.arange(len(data))
    full, sampled = [], []
    for start in range(0, len(data), batch_size):
        rows = order[start : start + batch_size]
        inputs = [data.inputs[i] for i in rows]
        width = min(max_len, max(len(x) for x in inputs) + 1) if trim else max_len
        seqs = torch.from_numpy(left_pad(inputs, width)).to(device)
        targets = torch.from_numpy(data.targets[rows]).to(device)
        negs = torch.from_numpy(negatives[rows]).to(device)
        with autocast(device, precision):
            users = model.user_vectors(seqs).float()
        if item_chunk is not None and table.shape[0] > item_chunk:  # a large catalogue
            sampled.append(sampled_ranks(users, table, targets, negs))
            history = torch.from_numpy(left_pad(inputs, max(len(x) for x in inputs))).to(device)
            mask = history if mask_history else None
            full.append(chunked_full_ranks(users, table, targets, mask, item_chunk))
            continue
        scores = users @ table.T  # (B, n_items + 1)
        scores[:, 0] = float("-inf")
        sampled.append(ranks_from_scores(scores, targets, negs))
        if mask_history:
            history = torch.from_numpy(
                left_pad(inputs, max((len(x) for x in inputs), default=1))
            ).to(device)
            keep = scores.gather(1, targets[:, None])
            scores.scatter_(1, history, float("-inf"))
            scores[:, 0] = float("-inf")
            scores.scatter_(1, targets[:, None], keep)
        full.append(ranks_from_scores(scores, targets))
    model.train(was_training)
    back = np.empty_like(order)
    back[order] = np.arange(len(order))
    return torch.cat(full).cpu().numpy()[back], torch.cat(sampled).cpu().numpy()[back]
