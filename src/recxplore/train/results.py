"""The results object of a run: what ``results.json`` holds and ``recxplore train --json`` prints.

Typed, so that every reader names its keys; a mapping, because it is the documented on-disk
contract (docs/evaluation.md) that reports and other tools read.
"""

from __future__ import annotations

from typing import Any, NotRequired, TypedDict

# protocol ("full", "sampled") -> metric ("NDCG@10") -> value
Metrics = dict[str, dict[str, float]]


class Timing(TypedDict):
    train_seconds: float
    epochs: int
    best_epoch: int
    patience_epochs: NotRequired[int]  # epochs without progress it would stop after
    seconds_to_best: float
    seconds_per_epoch: float
    devices: list[dict[str, Any]]  # [{"from_epoch": 1, "device": "cpu"}, ...]
    wall_seconds: NotRequired[float]  # the whole run, evaluation included


class Outcome(TypedDict):
    """What the training loop returns: validation and test metrics, and timing."""

    metrics: dict[str, Metrics]  # "valid" and "test"
    timing: Timing


class Results(TypedDict):
    run_dir: str
    dataset: str
    seed: int
    config: dict[str, dict[str, Any]]
    dataset_stats: dict[str, Any]
    metrics: dict[str, Metrics]
    timing: Timing
