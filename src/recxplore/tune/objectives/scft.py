"""scft: supervised contrastive fine-tuning (LLMEmb stage 1).

Two attribute-dropped views per item, mean-pooled, symmetric InfoNCE over in-batch negatives
with a learned temperature.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from recxplore.config import Config, option
from recxplore.data.dataset import Dataset
from recxplore.extract.encode import pad_batch
from recxplore.extract.pooling import mean_pool
from recxplore.registry import OBJECTIVES
from recxplore.text.flatten import flatten
from recxplore.tune.objectives.common import Objective, TuneModel, attributes_of


@dataclass(frozen=True, kw_only=True)
class SCFTConfig:
    drop: float = option(0.4, "scft: share of attributes dropped from each view", ge=0.0, lt=1.0)
    temperature: float = option(0.05, "scft: initial temperature of the InfoNCE (learned)", gt=0.0)


def scft_examples(ds: Dataset, cfg: Config, settings: SCFTConfig) -> list[dict]:
    attributes = attributes_of(ds, cfg)
    return [
        {k: m[k] for k in attributes if k in m}
        for m in ds.item_meta[1:]
        if any(k in m for k in attributes)
    ]


def drop_view(meta: dict, drop: float, rng: np.random.Generator) -> dict:
    """One SCFT view: each attribute dropped with probability ``drop``, at least one kept."""
    keys = list(meta)
    kept = [k for k in keys if rng.random() >= drop] or [keys[int(rng.integers(len(keys)))]]
    return {k: meta[k] for k in kept}


def _embed(tm: TuneModel, texts: list[str], device: torch.device) -> torch.Tensor:
    enc = tm.tokenizer(texts, truncation=True, max_length=tm.max_tokens)["input_ids"]
    ids, mask = pad_batch(enc, tm.tokenizer.pad_token_id, "right")
    ids, mask = ids.to(device), mask.to(device)
    hidden = tm.base(input_ids=ids, attention_mask=mask).last_hidden_state
    return F.normalize(mean_pool(hidden.float(), mask), dim=-1)


def scft_loss(
    tm: TuneModel,
    metas: list[dict],
    rng: np.random.Generator,
    device: torch.device,
    settings: SCFTConfig,
) -> torch.Tensor:
    drop = settings.drop
    views = [
        [
            flatten(drop_view(m, drop, rng), attributes=None, **tm.flatten_settings) or " "
            for m in metas
        ]
        for _ in range(2)
    ]
    a, b = _embed(tm, views[0], device), _embed(tm, views[1], device)
    logits = (
        a @ b.T / tm.extras["log_temperature"].exp()
    )  # (B, B): the diagonal holds the positives
    target = torch.arange(len(metas), device=device)
    return (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target)) / 2


def scft_temperature(settings: SCFTConfig) -> dict[str, torch.nn.Parameter]:
    return {"log_temperature": torch.nn.Parameter(torch.tensor(math.log(settings.temperature)))}


OBJECTIVES.register(
    "scft",
    Objective(scft_examples, scft_loss, extras=scft_temperature),
    SCFTConfig,
    help="supervised contrastive fine-tuning (LLMEmb stage 1)",
)
