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
    precision: NotRequired[str]  # float32 or bfloat16, train.precision as resolved on the device
    wall_seconds: NotRequired[float]  # the whole run, evaluation included
    world_size: NotRequired[int]  # processes of a torchrun job (absent: one)
    batch_per_process: NotRequired[int]  # windows of a global batch each of them trains on


# "<family>: <group>" -> {"family", "group", "users", "full": {...}, "sampled": {...}}
# (recxplore.eval.groups)
GroupMetrics = dict[str, dict[str, Any]]


class Outcome(TypedDict):
    """What the training loop returns: validation and test metrics, by group too, and timing."""

    metrics: dict[str, Metrics]  # "valid" and "test"
    groups: dict[str, GroupMetrics]  # "valid" and "test"
    timing: Timing
    cost: NotRequired[Cost]  # runs before costs were recorded lack it


class Cost(TypedDict):
    trained_parameters: int  # what the run's optimiser updates (frozen features excluded)
    upstream_seconds: dict[str, float]  # one-off stages its inputs needed, as recorded


class Results(TypedDict):
    run_dir: str
    dataset: str
    seed: int
    config: dict[str, dict[str, Any]]
    dataset_stats: dict[str, Any]
    metrics: dict[str, Metrics]
    groups: NotRequired[dict[str, GroupMetrics]]  # runs before groups were recorded lack it
    timing: Timing
    cost: NotRequired[Cost]  # runs before costs were recorded lack it
