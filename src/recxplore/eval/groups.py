"""Metrics by group of evaluation instances, computed from per-user ranks: by the target item's
training popularity, by the user's history length, and cold (the target never occurs in a
training sequence) against warm.

- ``popularity``: ``head`` and ``tail``. With ``eval.tail_below`` set (LLM-ESR's ``ts_item``), a
  target is tail when its training interaction count is below it; otherwise the most popular
  ``eval.head_share`` of the items with training interactions are head (ties at the boundary
  count as head) and the rest, unseen items included, tail.
- ``popularity bins``: five bins of the targets' training counts, cut at their quintiles.
- ``history``: ``short`` and ``long``. With ``eval.short_below`` set (LLM-ESR's ``ts_user``), a
  user is short when its input history has fewer items; otherwise the users whose history is
  among the shortest ``eval.short_share`` are short.
- ``history bins``: five bins of the history lengths, cut at their quintiles.
- ``cold``: ``cold`` and ``warm``, only where some target is cold.

A history is the whole input the model is given (before ``model.max_len`` cuts it).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Optional

import numpy as np

from recxplore.data.dataset import Dataset
from recxplore.data.split import EvalSet, train_sequences
from recxplore.eval.metrics import summarise

BINS = 5


@dataclass(frozen=True)
class Group:
    family: str  # popularity, popularity bins, history, history bins, cold
    name: str
    mask: np.ndarray  # (U,) bool over the evaluation instances


@dataclass(frozen=True)
class GroupRules:
    """How instances are grouped (``eval.*``); none of it changes a run."""

    head_share: float = 0.2
    tail_below: Optional[int] = None
    short_share: float = 0.2
    short_below: Optional[int] = None

    @classmethod
    def of(cls, eval_cfg: Any) -> GroupRules:
        return cls(
            eval_cfg.head_share, eval_cfg.tail_below, eval_cfg.short_share, eval_cfg.short_below
        )


def training_counts(train_seqs: list[np.ndarray], n_items: int) -> np.ndarray:
    """(n_items + 1,) interactions of each item in the training sequences."""
    flat = np.concatenate([s for s in train_seqs if len(s)] or [np.zeros(0, np.int64)])
    return np.bincount(flat, minlength=n_items + 1)


def _bins(values: np.ndarray, family: str) -> list[Group]:
    edges = np.unique(np.quantile(values, np.arange(1, BINS) / BINS))
    which = np.searchsorted(edges, values, side="right")
    out = []
    for b in range(len(edges) + 1):
        mask = which == b
        if mask.any():
            low, high = int(values[mask].min()), int(values[mask].max())
            name = f"{low}" if low == high else f"{low}-{high}"
            out.append(Group(family, name, mask))
    return out


def head_threshold(counts: np.ndarray, rules: GroupRules) -> int:
    """The training count from which an item is head."""
    if rules.tail_below is not None:
        return rules.tail_below
    active = np.sort(counts[1:][counts[1:] > 0])[::-1]
    if not len(active):
        return 1
    return int(active[max(1, math.ceil(rules.head_share * len(active))) - 1])


def short_threshold(lengths: np.ndarray, rules: GroupRules) -> int:
    """The history length from which a user is long."""
    if rules.short_below is not None:
        return rules.short_below
    ordered = np.sort(lengths)
    k = max(1, math.ceil(rules.short_share * len(ordered)))
    return int(ordered[k - 1]) + 1 if len(ordered) else 1


def define_groups(
    targets: np.ndarray, history_lengths: np.ndarray, counts: np.ndarray, rules: GroupRules
) -> list[Group]:
    """The groups of the instances with these targets and history lengths, given the items'
    training ``counts``."""
    popularity = counts[targets]
    head = popularity >= head_threshold(counts, rules)
    long = history_lengths >= short_threshold(history_lengths, rules)
    groups = [
        Group("popularity", "head", head),
        Group("popularity", "tail", ~head),
        *_bins(popularity, "popularity bins"),
        Group("history", "short", ~long),
        Group("history", "long", long),
        *_bins(history_lengths, "history bins"),
    ]
    cold = popularity == 0
    if cold.any():
        groups += [Group("cold", "cold", cold), Group("cold", "warm", ~cold)]
    return groups


def instance_groups(ds: Dataset, data: EvalSet, rules: GroupRules) -> list[Group]:
    """The groups of an evaluation set of ``ds``."""
    counts = training_counts(train_sequences(ds), ds.n_items)
    lengths = np.array([len(x) for x in data.inputs], dtype=np.int64)
    return define_groups(data.targets, lengths, counts, rules)


def _rule(rules: GroupRules, family: str) -> tuple[str, Any]:
    if family == "popularity":
        if rules.tail_below is not None:
            return "eval.tail_below", rules.tail_below
        return "eval.head_share", rules.head_share
    if rules.short_below is not None:
        return "eval.short_below", rules.short_below
    return "eval.short_share", rules.short_share


def one_group_problems(groups: list[Group], rules: GroupRules) -> list[str]:
    """What puts every instance in one group of a pair (a threshold past every item or user)."""
    problems = []
    for family in ("popularity", "history"):
        empty = [g.name for g in groups if g.family == family and not g.mask.any()]
        if empty:
            setting, value = _rule(rules, family)
            problems.append(
                f"{setting}={value} leaves the {'/'.join(empty)} group empty: every "
                f"instance is in one {family} group; choose a value inside the data's range"
            )
    return problems


def group_metrics(
    groups: list[Group], full: np.ndarray, sampled: np.ndarray, ks: list[int]
) -> dict[str, dict[str, Any]]:
    """``{"<family>: <name>": {"family", "group", "users", "full", "sampled"}}`` from the
    instances' full and sampled ranks."""
    out = {}
    for g in groups:
        out[f"{g.family}: {g.name}"] = {
            "family": g.family,
            "group": g.name,
            "users": int(g.mask.sum()),
            "full": summarise(full[g.mask], ks),
            "sampled": summarise(sampled[g.mask], ks),
        }
    return out
