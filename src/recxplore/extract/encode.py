"""Batched text encoding with a transformers model.

Texts are tokenised once, sorted by length (longest first) and padded per batch to that batch's
longest text, so little compute goes to padding. Runs under ``torch.inference_mode``; only the
pooled layer's states are kept (``output_hidden_states`` is requested only for a non-final layer).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Optional

import numpy as np
import torch

from recxplore.errors import ConfigError
from recxplore.extract.pooling import span_mask
from recxplore.llm.models import LoadedModel
from recxplore.registry import POOLINGS

TOKENIZE_CHUNK = 10_000


def tokenize(loaded: LoadedModel, texts: list[str], *, template: str = "{text}") -> list[list[int]]:
    """Token ids of each text, wrapped in ``template`` first (a pooling's prompt). Texts are
    tokenised ``TOKENIZE_CHUNK`` at a time: a fast tokenizer's encodings of a whole catalogue
    (offsets, tokens, masks) take about 6 KB per text, the ids alone a tenth of that."""
    ids: list[list[int]] = []
    for start in range(0, len(texts), TOKENIZE_CHUNK):
        chunk = texts[start : start + TOKENIZE_CHUNK]
        if template != "{text}":
            chunk = [template.replace("{text}", t) for t in chunk]
        ids.extend(loaded.tokenizer(chunk, add_special_tokens=True)["input_ids"])
    return ids


def pad_batch(ids: list[list[int]], pad_id: int, side: str) -> tuple[torch.Tensor, torch.Tensor]:
    L = max(len(x) for x in ids)
    input_ids = torch.full((len(ids), L), pad_id, dtype=torch.long)
    mask = torch.zeros((len(ids), L), dtype=torch.long)
    for row, x in enumerate(ids):
        span = slice(0, len(x)) if side == "right" else slice(L - len(x), L)
        input_ids[row, span] = torch.tensor(x, dtype=torch.long)
        mask[row, span] = 1
    return input_ids, mask


@torch.inference_mode()
def encode(
    loaded: LoadedModel,
    ids: list[list[int]],
    *,
    pooling: str,
    layer: int,
    batch_size: int,
    padding_side: str,
    device: torch.device,
    on_batch: Optional[Callable[[int], None]] = None,
    span: tuple[int, int] = (0, 0),
) -> np.ndarray:
    """(len(ids), D) float32 pooled embeddings, in the order of ``ids``, pooled over each
    text's tokens but the first ``span[0]`` and the last ``span[1]``."""
    model = loaded.model
    takes_positions = "position_ids" in inspect.signature(model.forward).parameters
    pool = POOLINGS[pooling]
    order = sorted(range(len(ids)), key=lambda i: (-len(ids[i]), i))
    out: Optional[np.ndarray] = None
    for start in range(0, len(order), batch_size):
        rows = order[start : start + batch_size]
        input_ids, mask = pad_batch(
            [ids[i] for i in rows], loaded.tokenizer.pad_token_id, padding_side
        )
        input_ids, mask = input_ids.to(device), mask.to(device)
        kwargs = {"input_ids": input_ids, "attention_mask": mask}
        if takes_positions:  # left padding must not shift the positions of real tokens
            kwargs["position_ids"] = (mask.cumsum(1) - 1).clamp(min=0)
        if layer == -1:
            hidden = model(**kwargs).last_hidden_state
        else:
            states = model(**kwargs, output_hidden_states=True).hidden_states
            if layer >= len(states):
                raise ConfigError(
                    [
                        f"extract.layer={layer}: the model has {len(states) - 1} "
                        f"layers; choose -1 (the last) or 0..{len(states) - 1}"
                    ]
                )
            hidden = states[layer]
        pooled_mask = span_mask(mask, *span) if span != (0, 0) else mask
        pooled = pool(hidden.float(), pooled_mask).cpu().numpy()  # (B, D)
        if out is None:
            out = np.zeros((len(ids), pooled.shape[1]), dtype=np.float32)
        out[rows] = pooled
        if on_batch:
            on_batch(len(rows))
    assert out is not None, "encode needs at least one text"
    return out
