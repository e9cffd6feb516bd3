"""Group metrics recomputed by hand on a tiny case, and the refusal of a group left empty."""

import numpy as np
import pytest

from recxplore.eval.groups import GroupRules, define_groups, group_metrics, one_group_problems


def _by_name(groups):
    return {f"{g.family}: {g.name}": g.mask.tolist() for g in groups}


def test_groups_and_their_metrics_by_hand():
    # items 1..5 with training counts 9, 5, 5, 1, 0 (item 5 never in training)
    counts = np.array([0, 9, 5, 5, 1, 0])
    targets = np.array([1, 2, 4, 5, 3])
    lengths = np.array([2, 10, 3, 8, 20])
    full = np.array([1, 3, 20, 7, 2])
    sampled = np.array([1, 2, 5, 3, 1])
    groups = define_groups(targets, lengths, counts, GroupRules(head_share=0.25, short_share=0.4))
    found = _by_name(groups)
    # 4 items with training counts; the top 25% is one item (count 9): head = count >= 9
    assert found["popularity: head"] == [True, False, False, False, False]
    assert found["popularity: tail"] == [False, True, True, True, True]
    # the shortest 40% of 5 users = 2 users (lengths 2 and 3): long from length 4
    assert found["history: short"] == [True, False, True, False, False]
    assert found["cold: cold"] == [False, False, False, True, False]
    metrics = group_metrics(groups, full, sampled, [10])
    tail = metrics["popularity: tail"]
    assert tail["users"] == 4
    # tail ranks 3, 20, 7, 2: NDCG@10 = mean of 1/log2(r+1) for r <= 10
    by_hand = (1 / np.log2(4) + 0 + 1 / np.log2(8) + 1 / np.log2(3)) / 4
    assert tail["full"]["NDCG@10"] == pytest.approx(by_hand, abs=1e-6)
    assert tail["full"]["HR@10"] == pytest.approx(3 / 4)
    assert metrics["cold: cold"]["full"]["HR@10"] == 1.0 and metrics["cold: cold"]["users"] == 1
    # five bins of the targets' counts (9, 5, 1, 0, 5) cover every instance once
    bins = [g for g in groups if g.family == "popularity bins"]
    assert sum(g.mask.sum() for g in bins) == 5
    assert [g.name for g in bins] == ["0", "1", "5", "9"]


def test_fixed_thresholds_follow_llm_esr():
    counts = np.array([0, 9, 5, 5, 1, 0])
    groups = define_groups(
        np.array([1, 2, 4]), np.array([2, 9, 12]), counts, GroupRules(tail_below=5, short_below=9)
    )
    found = _by_name(groups)
    assert found["popularity: tail"] == [False, False, True]  # count < 5
    assert found["history: short"] == [True, False, False]  # length < 9
    assert "cold: cold" not in found  # no cold target, no cold group


def test_a_threshold_that_puts_everything_in_one_group_is_named():
    counts = np.array([0, 9, 5, 5, 1])
    rules = GroupRules(tail_below=100)
    groups = define_groups(np.array([1, 2]), np.array([3, 4]), counts, rules)
    problems = one_group_problems(groups, rules)
    assert len(problems) == 1 and "eval.tail_below=100" in problems[0] and "head" in problems[0]
