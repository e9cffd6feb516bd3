"""scft: supervised contrastive fine-tuning (LLMEmb stage 1, liuqidong07/LLMEmb llm/llama.py).

Two views of each item, its attributes shuffled and some left out, mean-pooled; LLMEmb's
symmetric contrastive loss over the micro-batch's items, on dot products divided by a
temperature that starts at 3 and trains with the LoRA weights (LLMEmb's main_llm.py turns on
``requires_grad`` for its ``tau``), with soft targets from the views' self-similarities.
docs/baselines.md lists where ours differs.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from recxplore.config import Config, option
from recxplore.contrastive import contrastive_loss
from recxplore.data.dataset import Dataset
from recxplore.extract.encode import pad_batch
from recxplore.extract.pooling import mean_pool
from recxplore.registry import OBJECTIVES
from recxplore.text.flatten import flatten
from recxplore.tune.objectives.common import Objective, TuneModel, attributes_of


@dataclass(frozen=True, kw_only=True)
class SCFTConfig:
    drop: float = option(
        0.4,
        "scft: share of an item's attributes left out of each view (floor(n x drop), after "
        "shuffling each view's attributes, as LLMEmb does; at least one is kept)",
        ge=0.0,
        lt=1.0,
    )
    temperature: float = option(
        3.0, "scft: temperature dividing the similarities (its start when it trains)", gt=0.0
    )
    learn_temperature: bool = option(
        True, "scft: train the temperature with the LoRA weights, as LLMEmb does"
    )
    similarity: Literal["dot", "cosine"] = option(
        "dot", "scft: dot products of the pooled states (LLMEmb) or their cosines"
    )


TEMPERATURE_FILE = "scft_temperature.json"


class Temperature(nn.Module):
    """LLMEmb's ``tau``: one scalar on the model, so that it trains, is clipped and is
    checkpointed with the LoRA weights."""

    def __init__(self, start: float):
        super().__init__()
        self.value = nn.Parameter(torch.tensor(float(start)))


def attach_temperature(tm: TuneModel, ds: Dataset, cfg: Config, settings: SCFTConfig) -> None:
    if settings.learn_temperature:
        tm.lm.add_module("scft_temperature", Temperature(settings.temperature))


def temperature_of(tm: TuneModel, settings: SCFTConfig) -> torch.Tensor | float:
    module = getattr(tm.lm, "scft_temperature", None)
    return settings.temperature if module is None else module.value


def save_temperature(tm: TuneModel, folder: Path) -> None:
    """The temperature the stage ended with, and whether it trained."""
    module = getattr(tm.lm, "scft_temperature", None)
    record: dict[str, bool | float] = {"trained": module is not None}
    if module is not None:
        record["temperature"] = round(float(module.value.detach()), 6)
    (folder / TEMPERATURE_FILE).write_text(json.dumps(record) + "\n")


def scft_examples(ds: Dataset, cfg: Config, settings: SCFTConfig) -> list[dict]:
    attributes = attributes_of(ds, cfg)
    return [
        {k: m[k] for k in attributes if k in m}
        for m in ds.item_meta[1:]
        if any(k in m for k in attributes)
    ]


def drop_view(meta: dict, drop: float, rng: np.random.Generator) -> dict:
    """One SCFT view: the attributes in a random order, the last floor(n x drop) left out."""
    keys = [list(meta)[i] for i in rng.permutation(len(meta))]
    kept = keys[: max(1, len(keys) - int(len(keys) * drop))]
    return {k: meta[k] for k in kept}


def _embed(tm: TuneModel, texts: list[str], device: torch.device) -> torch.Tensor:
    enc = tm.tokenizer(texts, truncation=True, max_length=tm.max_tokens)["input_ids"]
    ids, mask = pad_batch(enc, tm.tokenizer.pad_token_id, "right")
    ids, mask = ids.to(device), mask.to(device)
    hidden = tm.base(input_ids=ids, attention_mask=mask).last_hidden_state
    return mean_pool(hidden.float(), mask)


def scft_loss(
    tm: TuneModel,
    metas: list[dict],
    rng: np.random.Generator,
    device: torch.device,
    settings: SCFTConfig,
) -> torch.Tensor:
    views = [
        [
            flatten(drop_view(m, settings.drop, rng), attributes=None, **tm.flatten_settings) or " "
            for m in metas
        ]
        for _ in range(2)
    ]
    a, b = _embed(tm, views[0], device), _embed(tm, views[1], device)
    if settings.similarity == "cosine":
        a, b = F.normalize(a, dim=-1), F.normalize(b, dim=-1)
    return contrastive_loss(a, b, temperature_of(tm, settings))


OBJECTIVES.register(
    "scft",
    # a model that cannot tell a micro-batch's n items apart scores log(n)
    Objective(
        scft_examples,
        scft_loss,
        chance=math.log,
        attach=attach_temperature,
        save=save_temperature,
        files=(TEMPERATURE_FILE,),
    ),
    SCFTConfig,
    help="supervised contrastive fine-tuning (LLMEmb stage 1)",
    version=2,  # 2: the loss in float32 under bfloat16 autocast
)
