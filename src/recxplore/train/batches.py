"""Training windows and batches.

Every training sequence is cut, from its end backwards, into non-overlapping windows of at most
``max_len`` targets, so each training interaction is a target exactly once per epoch (SASRec's
all-positions training; long histories are not truncated to their last ``max_len`` items).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from recxplore.eval.protocol import left_pad

BUCKET_POOL = 64  # batches' worth of shuffled windows sorted by length at a time


def epoch_batches(
    lengths: np.ndarray, batch_size: int, rng: np.random.Generator, bucketed: bool
) -> list[np.ndarray]:
    """One epoch's batches of window indices.

    Random: ``batch_size`` shuffled windows a batch. Bucketed: pools of shuffled windows are
    sorted by length and cut into batches of about ``batch_size`` x the mean window length
    padded positions (more short windows, fewer long ones), then the batches are shuffled; an
    epoch has about as many steps and targets a step as random batching, with far less padding.
    """
    order = rng.permutation(len(lengths))
    if not bucketed:
        return [order[s : s + batch_size] for s in range(0, len(order), batch_size)]
    budget = batch_size * float(lengths.mean())
    batches: list[np.ndarray] = []
    pool = BUCKET_POOL * batch_size
    for s in range(0, len(order), pool):
        chunk = order[s : s + pool]
        chunk = chunk[np.argsort(lengths[chunk], kind="stable")]
        start = 0
        for i in range(1, len(chunk) + 1):  # ascending: the newest window is the longest
            if i == len(chunk) or (i > start and (i + 1 - start) * lengths[chunk[i]] > budget):
                batches.append(chunk[start:i])
                start = i
    return [batches[i] for i in rng.permutation(len(batches))]


def causal_windows(seqs: list[np.ndarray], max_len: int) -> list[np.ndarray]:
    """Windows of max_len + 1 items: inputs are window[:-1], targets window[1:]."""
    out = []
    for seq in seqs:
        end = len(seq)
        while end >= 2:
            start = max(0, end - max_len - 1)
            out.append(seq[start:end])
            end = start + 1  # the next window's last target is this window's first input
    return out


def masked_windows(seqs: list[np.ndarray], max_len: int) -> list[np.ndarray]:
    out = []
    for seq in seqs:
        for end in range(len(seq), 0, -max_len):
            out.append(seq[max(0, end - max_len) : end])
    return out


def latest_window_owners(
    seqs: list[np.ndarray], make: Callable[[list[np.ndarray], int], list[np.ndarray]], max_len: int
) -> np.ndarray:
    """(n_windows,) for the windows ``make(seqs, max_len)`` cuts: the user whose most recent
    window each one is, -1 for a user's older windows (both window makers cut each sequence
    from its end, user by user)."""
    owners: list[int] = []
    for user, seq in enumerate(seqs):
        count = len(make([seq], max_len))
        owners.extend([user] * min(count, 1) + [-1] * max(count - 1, 0))
    return np.asarray(owners, dtype=np.int64)


def causal_batch(windows: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """(inputs, targets), both (B, L) left-padded to the longest window; target 0 = no loss."""
    padded = left_pad(windows, max(len(w) for w in windows))
    inputs, targets = padded[:, :-1], padded[:, 1:]
    return inputs, np.where(inputs == 0, 0, targets)  # a window's first item has no input


def masked_batch(
    windows: list[np.ndarray], mask_id: int, mask_prob: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """BERT4Rec cloze task: mask a share of real positions (at least the last one if none)."""
    seq = left_pad(windows, max(len(w) for w in windows))
    masked = (seq != 0) & (rng.random(seq.shape) < mask_prob)
    masked[:, -1] |= ~masked.any(1)  # the last column always holds a real item
    inputs = np.where(masked, mask_id, seq)
    targets = np.where(masked, seq, 0)
    return inputs, targets
