"""cpt: continued pre-training on the item texts exactly as the extractor will see them.

Causal language modelling on decoders; masked language modelling with BERT's 80/10/10
corruption on encoders.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from recxplore.config import Config, option
from recxplore.data.dataset import Dataset
from recxplore.registry import OBJECTIVES
from recxplore.text.items import item_texts
from recxplore.tune.objectives.common import (
    IGNORE,
    Objective,
    TuneModel,
    causal_loss,
    eos,
    labelled_batch,
)


@dataclass(frozen=True, kw_only=True)
class CPTConfig:
    mlm_prob: float = option(0.15, "cpt on an encoder: share of tokens masked", gt=0.0, lt=1.0)


def cpt_examples(ds: Dataset, cfg: Config, settings: CPTConfig) -> list[str]:
    return [t for t in item_texts(ds, cfg.text)[1:] if t.strip()]


def cpt_loss(
    tm: TuneModel,
    texts: list[str],
    rng: np.random.Generator,
    device: torch.device,
    settings: CPTConfig,
) -> torch.Tensor:
    if not tm.encoder:
        rows = []
        for text in texts:
            ids = (tm.tokenizer(text)["input_ids"] + eos(tm))[: tm.max_tokens]
            rows.append((ids, ids))
        return causal_loss(tm, rows, device)
    tok = tm.tokenizer
    special = set(tok.all_special_ids)
    rows = []
    for text in texts:
        ids = tok(text, truncation=True, max_length=tm.max_tokens)["input_ids"]
        inputs, labels = list(ids), [IGNORE] * len(ids)
        candidates = [i for i, t in enumerate(ids) if t not in special]
        chosen = [i for i in candidates if rng.random() < settings.mlm_prob] or candidates[:1]
        for i in chosen:
            labels[i] = ids[i]
            draw = rng.random()
            if draw < 0.8:
                inputs[i] = tok.mask_token_id
            elif draw < 0.9:
                inputs[i] = int(rng.integers(len(tok)))
        rows.append((inputs, labels))
    input_ids, mask, label_ids = labelled_batch(rows, device)
    input_ids = input_ids.masked_fill(mask == 0, tok.pad_token_id)
    return tm.lm(input_ids=input_ids, attention_mask=mask, labels=label_ids).loss


OBJECTIVES.register(
    "cpt",
    Objective(cpt_examples, cpt_loss),
    CPTConfig,
    help="continued pre-training on the item texts (masked LM for encoders)",
)
