"""said: semantically aligned item embeddings (Hu et al., "Enhancing Sequential Recommendation
via LLM-based Semantic Embedding Learning", WWW'24 Companion; re-run by liuqidong07/LLMEmb).

Each item has a learned vector; a projector maps it to one input embedding of the LLM, from
which the LLM (with LoRA) must generate the item's text, token by token. The item table, the
projector and the LoRA weights train together on that language-modelling loss; the items'
projected vectors (what the LLM reads) are the stage's output, and extraction stores them in
place of the LLM's reading of each text (``recxplore.extract.stage``). The downstream model
reads them frozen, through an adapter, as LLMEmb's SAID runs do (``SASRecPLUS``: a frozen table
through two linear layers, replacing the IDs).

Deviations (docs/baselines.md): one projected vector per item, one input embedding; the
table starts from the LLM's token-embedding scale, or from the mean input embedding of the
item's own text tokens with ``tune.said_init=text``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal, cast

import numpy as np
import torch
from torch import nn

from recxplore.config import Config, option
from recxplore.data.dataset import Dataset
from recxplore.extract.encode import pad_batch
from recxplore.llm.lora import ITEMS_FILE
from recxplore.registry import OBJECTIVES
from recxplore.text.items import item_texts
from recxplore.tune.objectives.common import IGNORE, Objective, TuneModel, eos


@dataclass(frozen=True, kw_only=True)
class SAIDConfig:
    init: Literal["normal", "text"] = option(
        "normal",
        "said: the item table's start (normal: at the LLM's token-embedding scale; text: the "
        "mean input embedding of the item's text tokens)",
    )


class SAIDItems(nn.Module):
    """The item table and the projector into the LLM's input-embedding space."""

    def __init__(self, rows: int, width: int, init: torch.Tensor):
        super().__init__()
        self.table = nn.Embedding(rows, width)
        with torch.no_grad():
            self.table.weight.copy_(init)
        self.projector = nn.Sequential(nn.Linear(width, width), nn.GELU(), nn.Linear(width, width))

    def forward(self, items: torch.Tensor) -> torch.Tensor:
        return self.projector(self.table(items))


def said_examples(ds: Dataset, cfg: Config, settings: SAIDConfig) -> list[tuple[int, str]]:
    texts = item_texts(ds, cfg.text)
    return [(i, texts[i]) for i in range(1, ds.n_items + 1) if texts[i].strip()]


def _token_ids(tm: TuneModel, text: str) -> list[int]:
    return (tm.tokenizer(text, add_special_tokens=False)["input_ids"] + eos(tm))[
        : tm.max_tokens - 1
    ]


def attach_items(tm: TuneModel, ds: Dataset, cfg: Config, settings: SAIDConfig) -> None:
    """Put the item table and projector on the model, so that they train with the LoRA weights
    and are saved in its checkpoints."""
    words = tm.base.get_input_embeddings().weight.detach().float()
    width = words.shape[1]
    if settings.init == "text":
        texts = item_texts(ds, cfg.text)
        init = torch.zeros(ds.n_items + 1, width)
        for i in range(1, ds.n_items + 1):
            ids = _token_ids(tm, texts[i]) if texts[i].strip() else []
            if ids:
                init[i] = words[ids].mean(0)
    else:
        init = torch.randn(ds.n_items + 1, width) * words.std()
    tm.lm.add_module("said_items", SAIDItems(ds.n_items + 1, width, init))


def said_loss(
    tm: TuneModel,
    examples: list[tuple[int, str]],
    rng: np.random.Generator,
    device: torch.device,
    settings: SAIDConfig,
) -> torch.Tensor:
    items = torch.tensor([i for i, _ in examples], device=device)
    ids, mask = pad_batch([_token_ids(tm, t) for _, t in examples], 0, "right")
    ids, mask = ids.to(device), mask.to(device)
    words = tm.base.get_input_embeddings()(ids.masked_fill(mask == 0, tm.tokenizer.pad_token_id))
    soft = tm.lm.said_items(items).to(words.dtype).unsqueeze(1)  # (B, 1, d)
    inputs = torch.cat([soft, words], dim=1)
    attention = torch.cat([torch.ones_like(mask[:, :1]), mask], dim=1)
    labels = torch.cat([torch.full_like(ids[:, :1], IGNORE), ids.masked_fill(mask == 0, IGNORE)], 1)
    # the model shifts the labels: the item's vector predicts the first token, and so on
    return tm.lm(inputs_embeds=inputs, attention_mask=attention, labels=labels).loss


def save_items(tm: TuneModel, folder: Path) -> None:
    from safetensors.torch import save_file

    module = cast(SAIDItems, tm.lm.said_items)
    with torch.no_grad():
        rows = torch.arange(module.table.num_embeddings, device=module.table.weight.device)
        vectors = module(rows).float().cpu()
    vectors[0] = 0.0  # padding
    save_file({"embeddings": vectors.contiguous()}, str(folder / ITEMS_FILE))


OBJECTIVES.register(
    "said",
    Objective(
        said_examples,
        said_loss,
        causal_only=True,
        attach=attach_items,
        save=save_items,
        files=(ITEMS_FILE,),
    ),
    SAIDConfig,
    help="SAID: item vectors from which the LLM generates the item's text (Hu et al., 2024)",
)
