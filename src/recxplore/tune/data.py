"""The examples each tuning stage learns from, built from the catalogue and the training split.

- cpt: the item texts exactly as the extractor will see them (flattened attributes).
- sft: question/answer pairs, the loss on the answer only. Both kinds come from training data:
  attribute questions are asked only about items that occur in some training sequence, and
  next-item questions only use each user's training part (validation and test items excluded).
  Templates (``{domain}`` is the source's noun, e.g. movie)::

    attribute:  "<the other attributes, kv style>\\nQuestion: What is the <attribute> of this
                 {domain}?\\nAnswer:" -> " <value>"
    next_item:  "A user interacted with these {domain}s, oldest first:\\n1. <name>\\n2. ...
                 \\nQuestion: Which {domain} will the user interact with next?\\nAnswer:"
                 -> " <name of the next training item>"

  An item's name is its first text attribute (the title for MovieLens and Amazon).
- scft: the items' attribute dictionaries; the stage draws two views of each by dropping
  attributes at random (at least one kept).
"""

from __future__ import annotations

import numpy as np

from recxplore.config import Config
from recxplore.data.dataset import Dataset
from recxplore.data.split import train_sequences
from recxplore.text.flatten import clean_value, flatten
from recxplore.text.items import item_texts, text_settings


def cpt_examples(ds: Dataset, cfg: Config) -> list[str]:
    return [t for t in item_texts(ds, cfg.text)[1:] if t.strip()]


def _attributes(ds: Dataset, cfg: Config) -> list[str]:
    settings = text_settings(cfg.text, ds.name)
    if settings["attributes"] is not None:
        return settings["attributes"]
    keys: dict[str, None] = {}
    for meta in ds.item_meta[1:]:
        keys.update(dict.fromkeys(meta))
    return list(keys)


def _value(ds: Dataset, item: int, key: str, max_chars: int) -> str | None:
    return clean_value(key, ds.item_meta[item].get(key), max_chars)


def attribute_questions(ds: Dataset, cfg: Config, items: np.ndarray) -> list[tuple[str, str]]:
    attributes = _attributes(ds, cfg)
    settings = text_settings(cfg.text, ds.name)
    out = []
    for item in items:
        for key in attributes:
            answer = _value(ds, int(item), key, cfg.text.max_chars)
            others = [k for k in attributes if k != key]
            context = flatten(ds.item_meta[int(item)], attributes=others, style="kv",
                              max_chars=cfg.text.max_chars, domain=settings["domain"])
            if answer and context:
                out.append((f"{context}\nQuestion: What is the {key.replace('_', ' ')} of this "
                            f"{settings['domain']}?\nAnswer:", f" {answer}"))
    return out


def next_item_questions(ds: Dataset, cfg: Config) -> list[tuple[str, str]]:
    name_key = _attributes(ds, cfg)[0]
    domain = text_settings(cfg.text, ds.name)["domain"]
    tc = cfg.tune
    out = []
    for seq in train_sequences(ds):
        for t in range(len(seq) - 1, max(0, len(seq) - 1 - tc.sft_per_user), -1):
            history = [_value(ds, int(i), name_key, cfg.text.max_chars)
                       for i in seq[max(0, t - tc.sft_history):t]]
            answer = _value(ds, int(seq[t]), name_key, cfg.text.max_chars)
            history = [h for h in history if h]
            if not answer or not history:
                continue
            listed = "\n".join(f"{n}. {h}" for n, h in enumerate(history, 1))
            out.append((f"A user interacted with these {domain}s, oldest first:\n{listed}\n"
                        f"Question: Which {domain} will the user interact with next?\nAnswer:",
                        f" {answer}"))
    return out


def sft_examples(ds: Dataset, cfg: Config) -> list[tuple[str, str]]:
    out = []
    if "attribute" in cfg.tune.sft_tasks:
        seen = np.unique(np.concatenate([s for s in train_sequences(ds) if len(s)] or [[]]))
        out += attribute_questions(ds, cfg, seen.astype(np.int64))
    if "next_item" in cfg.tune.sft_tasks:
        out += next_item_questions(ds, cfg)
    return out


def scft_examples(ds: Dataset, cfg: Config) -> list[dict]:
    attributes = _attributes(ds, cfg)
    return [{k: m[k] for k in attributes if k in m} for m in ds.item_meta[1:]
            if any(k in m for k in attributes)]


def drop_view(meta: dict, drop: float, rng: np.random.Generator) -> dict:
    """One SCFT view: each attribute dropped with probability ``drop``, at least one kept."""
    keys = list(meta)
    kept = [k for k in keys if rng.random() >= drop] or [keys[int(rng.integers(len(keys)))]]
    return {k: meta[k] for k in kept}
