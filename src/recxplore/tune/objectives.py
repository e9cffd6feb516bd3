"""The loss of each tuning stage on one micro-batch of examples.

- cpt: causal language modelling on item texts (decoders); masked language modelling with
  BERT's 80/10/10 corruption (encoders).
- sft: causal language modelling on question + answer, the loss on answer tokens only.
- scft: two attribute-dropped views per item, mean-pooled, symmetric InfoNCE over in-batch
  negatives with a learned temperature (LLMEmb stage 1).
All randomness comes from the ``rng`` passed in, so a resumed stage repeats the same batches.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import torch
import torch.nn.functional as F

from recxplore.extract.encode import pad_batch
from recxplore.extract.pooling import mean_pool
from recxplore.registry import Registry
from recxplore.text.flatten import flatten
from recxplore.tune.data import drop_view

IGNORE = -100


@dataclass
class TuneModel:
    lm: torch.nn.Module      # the model with its LM head (causal or masked)
    base: torch.nn.Module    # the extractor's base model inside it (where LoRA lives)
    tokenizer: Any
    encoder: bool            # masked-LM model (BERT-like) rather than a decoder
    max_tokens: int
    mlm_prob: float          # cpt on an encoder
    scft_drop: float
    log_temperature: torch.nn.Parameter  # scft only: log of the InfoNCE temperature
    flatten_settings: dict[str, Any]     # style, max_chars, domain of the item texts


def _eos(tm: TuneModel) -> list[int]:
    eos = tm.tokenizer.eos_token_id
    return [eos] if eos is not None else []


def _labelled_batch(rows: list[tuple[list[int], list[int]]], device: torch.device
                    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(ids, labels) pairs -> right-padded input_ids, attention_mask, labels (IGNORE on pads)."""
    ids, mask = pad_batch([r[0] for r in rows], 0, "right")
    labels = torch.full_like(ids, IGNORE)
    for i, (_, lab) in enumerate(rows):
        labels[i, :len(lab)] = torch.tensor(lab)
    return ids.to(device), mask.to(device), labels.to(device)


def _causal_loss(tm: TuneModel, rows: list[tuple[list[int], list[int]]], device: torch.device
                 ) -> torch.Tensor:
    ids, mask, labels = _labelled_batch(rows, device)
    ids = ids.masked_fill(mask == 0, tm.tokenizer.pad_token_id)
    return tm.lm(input_ids=ids, attention_mask=mask, labels=labels).loss


def cpt_loss(tm: TuneModel, texts: list[str], rng: np.random.Generator,
             device: torch.device) -> torch.Tensor:
    if not tm.encoder:
        rows = []
        for text in texts:
            ids = (tm.tokenizer(text)["input_ids"] + _eos(tm))[:tm.max_tokens]
            rows.append((ids, ids))
        return _causal_loss(tm, rows, device)
    tok = tm.tokenizer
    special = set(tok.all_special_ids)
    rows = []
    for text in texts:
        ids = tok(text, truncation=True, max_length=tm.max_tokens)["input_ids"]
        inputs, labels = list(ids), [IGNORE] * len(ids)
        candidates = [i for i, t in enumerate(ids) if t not in special]
        chosen = [i for i in candidates if rng.random() < tm.mlm_prob] or candidates[:1]
        for i in chosen:
            labels[i] = ids[i]
            draw = rng.random()
            if draw < 0.8:
                inputs[i] = tok.mask_token_id
            elif draw < 0.9:
                inputs[i] = int(rng.integers(len(tok)))
        rows.append((inputs, labels))
    ids, mask, labels = _labelled_batch(rows, device)
    ids = ids.masked_fill(mask == 0, tok.pad_token_id)
    return tm.lm(input_ids=ids, attention_mask=mask, labels=labels).loss


def sft_loss(tm: TuneModel, pairs: list[tuple[str, str]], rng: np.random.Generator,
             device: torch.device) -> torch.Tensor:
    rows = []
    for prompt, answer in pairs:
        a = (tm.tokenizer(answer, add_special_tokens=False)["input_ids"] + _eos(tm))
        a = a[:tm.max_tokens // 2]
        p = tm.tokenizer(prompt)["input_ids"][-(tm.max_tokens - len(a)):]  # keep the question
        rows.append((p + a, [IGNORE] * len(p) + a))
    return _causal_loss(tm, rows, device)


def _embed(tm: TuneModel, texts: list[str], device: torch.device) -> torch.Tensor:
    enc = tm.tokenizer(texts, truncation=True, max_length=tm.max_tokens)["input_ids"]
    ids, mask = pad_batch(enc, tm.tokenizer.pad_token_id, "right")
    ids, mask = ids.to(device), mask.to(device)
    hidden = tm.base(input_ids=ids, attention_mask=mask).last_hidden_state
    return F.normalize(mean_pool(hidden.float(), mask), dim=-1)


def scft_loss(tm: TuneModel, metas: list[dict], rng: np.random.Generator,
              device: torch.device) -> torch.Tensor:
    drop = tm.scft_drop
    views = [[flatten(drop_view(m, drop, rng), attributes=None, **tm.flatten_settings) or " "
              for m in metas] for _ in range(2)]
    a, b = _embed(tm, views[0], device), _embed(tm, views[1], device)
    logits = a @ b.T / tm.log_temperature.exp()  # (B, B): the diagonal holds the positives
    target = torch.arange(len(metas), device=device)
    return (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target)) / 2


Objective = Callable[[TuneModel, list, np.random.Generator, torch.device], torch.Tensor]
OBJECTIVES: Registry[Objective] = Registry("tuning stage")
OBJECTIVES.register("cpt", cpt_loss)
OBJECTIVES.register("sft", sft_loss)
OBJECTIVES.register("scft", scft_loss)
