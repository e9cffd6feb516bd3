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


def ranks_from_scores(
    scores: torch.Tensor, targets: torch.Tensor, negatives: Optional[torch.Tensor] = None
) -> torch.Tensor:
    """scores: (B, n_items + 1) with padding/masked entries at -inf; targets: (B,).

    Returns 1-based pessimistic ranks (B,) among all items, or among target + negatives (B, N)
    when ``negatives`` is given. A NaN score ranks last.
    """
    scores = torch.nan_to_num(scores, nan=float("-inf"))
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
