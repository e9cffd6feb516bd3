import math

import numpy as np
import pytest
import torch

from recxplore.eval.metrics import hit_rate, mrr, ndcg, summarise
from recxplore.eval.protocol import ranks_from_scores


def test_hit_at_rank_one():
    assert hit_rate([1], 5) == 1.0
    assert ndcg([1], 5) == 1.0
    assert mrr([1], 5) == 1.0


def test_miss():
    assert hit_rate([7], 5) == 0.0
    assert ndcg([7], 5) == 0.0
    assert mrr([7], 5) == 0.0


def test_rank_exactly_k_and_k_plus_one():
    assert hit_rate([5], 5) == 1.0
    assert ndcg([5], 5) == pytest.approx(1 / math.log2(6))
    assert mrr([5], 5) == pytest.approx(0.2)
    assert hit_rate([6], 5) == 0.0
    assert ndcg([6], 5) == 0.0


def test_mean_over_users():
    ranks = [1, 2, 11]
    assert hit_rate(ranks, 10) == pytest.approx(2 / 3)
    assert ndcg(ranks, 10) == pytest.approx((1 + 1 / math.log2(3)) / 3)
    assert summarise(ranks, [10])["MRR@10"] == pytest.approx(round((1 + 0.5) / 3, 6))


def test_ties_count_against_the_target():
    # target 1 ties with items 2 and 3 and is beaten by item 4: rank = 1 + 3
    scores = torch.tensor([[float("-inf"), 0.5, 0.5, 0.5, 0.9, 0.1]])
    assert ranks_from_scores(scores, torch.tensor([1])).tolist() == [4]


def test_constant_scores_rank_every_target_last():
    n_items, users = 200, 50
    scores = torch.zeros(users, n_items + 1)
    scores[:, 0] = float("-inf")
    targets = torch.randint(1, n_items + 1, (users,))
    ranks = ranks_from_scores(scores, targets).numpy()
    assert (ranks == n_items).all()
    assert hit_rate(ranks, 10) == 0.0  # pessimistic: never a lucky 1.0


def test_random_scores_give_chance_level_hit_rate():
    n_items, users, k = 200, 20_000, 10
    gen = torch.Generator().manual_seed(0)
    scores = torch.rand(users, n_items + 1, generator=gen)
    scores[:, 0] = float("-inf")
    targets = torch.randint(1, n_items + 1, (users,), generator=gen)
    ranks = ranks_from_scores(scores, targets).numpy()
    chance = k / n_items  # 0.05; the binomial std over 20,000 users is about 0.0015
    assert hit_rate(ranks, k) == pytest.approx(chance, abs=0.005)
    assert ranks.min() >= 1 and ranks.max() <= n_items


def test_one_item_catalogue():
    scores = torch.tensor([[float("-inf"), 0.3]])
    assert ranks_from_scores(scores, torch.tensor([1])).tolist() == [1]
    assert hit_rate([1], 1) == 1.0


def test_sampled_ranks_ignore_padding_negatives():
    scores = torch.tensor([[float("-inf"), 0.2, 0.9, 0.1, 0.4]])
    negatives = torch.tensor([[2, 3, 0]])  # 0 = fewer unseen items than requested
    assert ranks_from_scores(scores, torch.tensor([1]), negatives).tolist() == [2]


def test_nan_score_ranks_last():
    scores = torch.tensor([[float("-inf"), float("nan"), 0.1, 0.2]])
    assert ranks_from_scores(scores, torch.tensor([1])).tolist() == [3]


def test_ranks_must_be_one_based():
    with pytest.raises(AssertionError):
        hit_rate(np.array([0]), 5)
