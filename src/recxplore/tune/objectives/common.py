"""What every tuning objective shares: the model it trains and how batches are labelled.

A tuning objective is one file that registers an ``Objective`` (the examples it learns from,
built from the catalogue and the training split only, and its loss on one micro-batch) with its
own settings in ``OBJECTIVES``. All randomness comes from the ``rng`` passed in, so a resumed
stage repeats the same batches.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import numpy as np
import torch

from recxplore.config import Config
from recxplore.data.dataset import Dataset
from recxplore.extract.encode import pad_batch
from recxplore.text.items import text_settings

IGNORE = -100


@dataclass
class TuneModel:
    lm: torch.nn.Module  # the model with its LM head (causal or masked)
    base: torch.nn.Module  # the extractor's base model inside it (where LoRA lives)
    tokenizer: Any
    encoder: bool  # masked-LM model (BERT-like) rather than a decoder
    max_tokens: int
    flatten_settings: dict[str, Any]  # style, max_chars, domain of the item texts


@dataclass(frozen=True)
class Objective:
    examples: Callable[[Dataset, Config, Any], list[Any]]  # (dataset, config, settings)
    loss: Callable[[TuneModel, list[Any], np.random.Generator, torch.device, Any], torch.Tensor]
    causal_only: bool = False  # needs a decoder (refused on encoders)
    # the loss of a model that cannot tell the n examples of a micro-batch apart, if defined
    chance: Optional[Callable[[int], float]] = None
    # an objective that trains more than LoRA weights (SAID's item table): ``attach`` puts its
    # modules on the model before training, ``save`` writes them into the stage's folder as
    # ``files``, published and checksummed beside the adapter
    attach: Optional[Callable[[TuneModel, Dataset, Config, Any], None]] = None
    save: Optional[Callable[[TuneModel, Path], None]] = None
    files: tuple[str, ...] = ()


def eos(tm: TuneModel) -> list[int]:
    token = tm.tokenizer.eos_token_id
    return [token] if token is not None else []


def labelled_batch(
    rows: list[tuple[list[int], list[int]]], device: torch.device
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(ids, labels) pairs -> right-padded input_ids, attention_mask, labels (IGNORE on pads)."""
    ids, mask = pad_batch([r[0] for r in rows], 0, "right")
    labels = torch.full_like(ids, IGNORE)
    for i, (_, lab) in enumerate(rows):
        labels[i, : len(lab)] = torch.tensor(lab)
    return ids.to(device), mask.to(device), labels.to(device)


def causal_loss(
    tm: TuneModel, rows: list[tuple[list[int], list[int]]], device: torch.device
) -> torch.Tensor:
    ids, mask, labels = labelled_batch(rows, device)
    ids = ids.masked_fill(mask == 0, tm.tokenizer.pad_token_id)
    return tm.lm(input_ids=ids, attention_mask=mask, labels=labels).loss


def attributes_of(ds: Dataset, cfg: Config) -> list[str]:
    """The text attributes in order: the config's, else the source's, else every one met."""
    settings = text_settings(cfg.text, ds.name)
    if settings["attributes"] is not None:
        return list(settings["attributes"])
    keys: dict[str, None] = {}
    for meta in ds.item_meta[1:]:
        keys.update(dict.fromkeys(meta))
    return list(keys)
