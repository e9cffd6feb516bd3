"""sft: question answering on training data, the loss on the answer tokens only.

Both kinds of question come from training data: attribute questions are asked only about items
that occur in some training sequence, and next-item questions only use each user's training
part (validation and test items excluded). Templates (``{domain}`` is the source's noun)::

    attribute:  "<the other attributes, kv style>\\nQuestion: What is the <attribute> of this
                 {domain}?\\nAnswer:" -> " <value>"
    next_item:  "A user interacted with these {domain}s, oldest first:\\n1. <name>\\n2. ...
                 \\nQuestion: Which {domain} will the user interact with next?\\nAnswer:"
                 -> " <name of the next training item>"

An item's name is its first text attribute (the title for MovieLens and Amazon).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Optional

import numpy as np
import torch

from recxplore.config import Config, ConfigError, option
from recxplore.data.dataset import Dataset
from recxplore.data.split import train_sequences
from recxplore.registry import OBJECTIVES
from recxplore.text.flatten import clean_value, flatten
from recxplore.text.items import text_settings
from recxplore.tune.objectives.common import (
    IGNORE,
    Objective,
    TuneModel,
    attributes_of,
    causal_loss,
    eos,
)


@dataclass(frozen=True, kw_only=True)
class SFTConfig:
    tasks: list[Literal["attribute", "next_item"]] = option(
        ["attribute", "next_item"],
        "sft question types: attribute = an attribute of an item "
        "given its other attributes; next_item = the next training item given recent ones",
    )
    history: int = option(5, "sft next_item: recent training items named in the question", ge=1)
    per_user: int = option(
        2,
        "sft next_item: questions per user, from the end of the training sequence backwards",
        ge=1,
    )

    def __post_init__(self) -> None:
        if not self.tasks:
            raise ConfigError(["tune.sft_tasks: needs at least one of attribute, next_item"])


def _value(ds: Dataset, item: int, key: str, max_chars: int) -> Optional[str]:
    return clean_value(key, ds.item_meta[item].get(key), max_chars)


def attribute_questions(ds: Dataset, cfg: Config, items: np.ndarray) -> list[tuple[str, str]]:
    attributes = attributes_of(ds, cfg)
    settings = text_settings(cfg.text, ds.name)
    out = []
    for item in items:
        for key in attributes:
            answer = _value(ds, int(item), key, cfg.text.max_chars)
            others = [k for k in attributes if k != key]
            context = flatten(
                ds.item_meta[int(item)],
                attributes=others,
                style="kv",
                max_chars=cfg.text.max_chars,
                domain=settings["domain"],
            )
            if answer and context:
                out.append(
                    (
                        f"{context}\nQuestion: What is the {key.replace('_', ' ')} of this "
                        f"{settings['domain']}?\nAnswer:",
                        f" {answer}",
                    )
                )
    return out


def next_item_questions(ds: Dataset, cfg: Config, settings: SFTConfig) -> list[tuple[str, str]]:
    name_key = attributes_of(ds, cfg)[0]
    domain = text_settings(cfg.text, ds.name)["domain"]
    out = []
    for seq in train_sequences(ds):
        for t in range(len(seq) - 1, max(0, len(seq) - 1 - settings.per_user), -1):
            history = [
                _value(ds, int(i), name_key, cfg.text.max_chars)
                for i in seq[max(0, t - settings.history) : t]
            ]
            answer = _value(ds, int(seq[t]), name_key, cfg.text.max_chars)
            history = [h for h in history if h]
            if not answer or not history:
                continue
            listed = "\n".join(f"{n}. {h}" for n, h in enumerate(history, 1))
            out.append(
                (
                    f"A user interacted with these {domain}s, oldest first:\n{listed}\n"
                    f"Question: Which {domain} will the user interact with next?\nAnswer:",
                    f" {answer}",
                )
            )
    return out


def sft_examples(ds: Dataset, cfg: Config, settings: SFTConfig) -> list[tuple[str, str]]:
    out = []
    if "attribute" in settings.tasks:
        seen = np.unique(
            np.concatenate([s for s in train_sequences(ds) if len(s)] or [np.zeros(0, np.int64)])
        )
        out += attribute_questions(ds, cfg, seen.astype(np.int64))
    if "next_item" in settings.tasks:
        out += next_item_questions(ds, cfg, settings)
    return out


def sft_loss(
    tm: TuneModel,
    pairs: list[tuple[str, str]],
    rng: np.random.Generator,
    device: torch.device,
    settings: SFTConfig,
) -> torch.Tensor:
    rows = []
    for prompt, answer in pairs:
        a = tm.tokenizer(answer, add_special_tokens=False)["input_ids"] + eos(tm)
        a = a[: tm.max_tokens // 2]
        p = tm.tokenizer(prompt)["input_ids"][-(tm.max_tokens - len(a)) :]  # keep the question
        rows.append((p + a, [IGNORE] * len(p) + a))
    return causal_loss(tm, rows, device)


OBJECTIVES.register(
    "sft",
    Objective(sft_examples, sft_loss, causal_only=True),
    SFTConfig,
    help="supervised fine-tuning: question answering on training data",
)
