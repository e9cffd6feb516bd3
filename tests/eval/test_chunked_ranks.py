"""Full ranking in item chunks gives the ranks of the whole score matrix: ties, a masked
history (with repeats and the target in it), NaN scores, a dead target; so does sampled ranking
from the target and negatives alone; and a whole evaluation agrees either way."""

import numpy as np
import pytest
import torch

from recxplore.data.split import EvalSet
from recxplore.eval.protocol import (
    chunked_full_ranks,
    left_pad,
    rank_users,
    ranks_from_scores,
    sampled_ranks,
)


def _exact(users, table, targets, history):
    scores = users @ table.T
    scores[:, 0] = float("-inf")
    if history is not None:
        keep = scores.gather(1, targets[:, None])
        scores.scatter_(1, history, float("-inf"))
        scores[:, 0] = float("-inf")
        scores.scatter_(1, targets[:, None], keep)
    return ranks_from_scores(scores, targets)


@pytest.mark.parametrize("chunk", [1, 3, 7, 50])
def test_chunked_full_ranks_equal_the_exact_ones(chunk):
    rng = np.random.default_rng(0)
    # integer-valued vectors: many exact ties, and dot products without rounding
    table = torch.from_numpy(rng.integers(-2, 3, size=(31, 4)).astype(np.float32))
    table[0] = 0
    table[5] = float("nan")  # a NaN item ranks last
    users = torch.from_numpy(rng.integers(-2, 3, size=(12, 4)).astype(np.float32))
    targets = torch.from_numpy(rng.integers(1, 31, size=12))
    targets[0] = 5  # a dead (NaN) target
    history = torch.from_numpy(rng.integers(0, 31, size=(12, 6)))
    history[1, :3] = targets[1]  # the target in its own history, repeated
    history[2] = 0  # no history
    for h in (None, history):
        torch.testing.assert_close(
            chunked_full_ranks(users, table, targets, h, chunk), _exact(users, table, targets, h)
        )


def test_sampled_ranks_from_the_candidates_alone_equal_the_exact_ones():
    rng = np.random.default_rng(1)
    table = torch.from_numpy(rng.integers(-2, 3, size=(40, 4)).astype(np.float32))
    table[0] = 0
    users = torch.from_numpy(rng.integers(-2, 3, size=(9, 4)).astype(np.float32))
    targets = torch.from_numpy(rng.integers(1, 40, size=9))
    negatives = torch.from_numpy(rng.integers(0, 40, size=(9, 10)))  # 0: padding negatives
    scores = users @ table.T
    scores[:, 0] = float("-inf")
    torch.testing.assert_close(
        sampled_ranks(users, table, targets, negatives),
        ranks_from_scores(scores, targets, negatives),
    )


class _Items(torch.nn.Module):
    def __init__(self, table):
        super().__init__()
        self.table = table

    def all_items(self):
        return self.table


class _Dot(torch.nn.Module):
    """A model whose user vector is the sum of its history's item vectors."""

    def __init__(self, table):
        super().__init__()
        self.items = _Items(table)

    def user_vectors(self, seqs):
        return self.items.table[seqs].sum(1)


def test_a_whole_evaluation_is_the_same_in_chunks():
    rng = np.random.default_rng(2)
    table = torch.from_numpy(rng.normal(size=(200, 8)).astype(np.float32))
    table[0] = 0
    inputs = [rng.integers(1, 200, size=int(rng.integers(1, 12))) for _ in range(40)]
    data = EvalSet(np.arange(40), inputs, rng.integers(1, 200, size=40))
    negatives = rng.integers(1, 200, size=(40, 20))
    kwargs = dict(max_len=8, batch_size=16, mask_history=True, device=torch.device("cpu"))
    whole = rank_users(_Dot(table), data, negatives, **kwargs)
    chunked = rank_users(_Dot(table), data, negatives, item_chunk=32, **kwargs)
    np.testing.assert_array_equal(whole[0], chunked[0])
    np.testing.assert_array_equal(whole[1], chunked[1])
    assert left_pad(inputs, 8).shape == (40, 8)
