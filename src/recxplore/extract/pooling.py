"""Token aggregation: (B, L, D) hidden states + (B, L) attention mask -> (B, D).

Correct under left and right padding: positions are located from the mask, never assumed.
``eol`` (PromptEOL) wraps the text in a one-word prompt before tokenisation (its setting
``template``) and then takes the last token, so here it is the same as ``last``.

``extract.pool_span=item`` pools only the item's own tokens: the mask handed to a pooling is
narrowed by ``span_mask`` to the tokens between the prefix and the suffix all items share
(``shared_affixes``).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from recxplore.config import option
from recxplore.errors import ConfigError
from recxplore.registry import POOLINGS


def mean_pool(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    m = mask.unsqueeze(-1).to(hidden.dtype)  # (B, L, 1)
    return (hidden * m).sum(1) / m.sum(1).clamp(min=1)


def max_pool(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    return hidden.masked_fill(~mask.bool().unsqueeze(-1), float("-inf")).max(1).values


def last_pool(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    L = mask.shape[1]
    last = L - 1 - mask.bool().flip(1).int().argmax(1)  # (B,) index of the last real token
    return hidden[torch.arange(len(hidden), device=hidden.device), last]


def first_pool(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    first = mask.bool().int().argmax(1)  # (B,) index of the first real token
    return hidden[torch.arange(len(hidden), device=hidden.device), first]


def shared_affixes(ids: list[list[int]]) -> tuple[int, int]:
    """Lengths of the longest token prefix and suffix that every sequence in ``ids`` shares,
    cut so that every sequence keeps at least one token between them."""
    shortest = min(len(x) for x in ids)
    prefix = 0
    while prefix < shortest - 1 and len({x[prefix] for x in ids}) == 1:
        prefix += 1
    suffix = 0
    while prefix + suffix < shortest - 1 and len({x[len(x) - 1 - suffix] for x in ids}) == 1:
        suffix += 1
    return prefix, suffix


def span_mask(mask: torch.Tensor, start: int, cut: int) -> torch.Tensor:
    """``mask`` (B, L) narrowed to each row's real tokens ``start`` .. length - ``cut`` - 1,
    counted from the row's first real token whichever side the padding is on."""
    real = mask.bool()
    position = real.long().cumsum(1) - 1  # index among the row's real tokens
    length = real.sum(1, keepdim=True)
    return (real & (position >= start) & (position < length - cut)).to(mask.dtype)


@dataclass(frozen=True, kw_only=True)
class EOLConfig:
    template: str = option(
        'This item: "{text}" means in one word:"',
        "PromptEOL wrapper used by pooling=eol; must contain {text}",
    )

    def __post_init__(self) -> None:
        if "{text}" not in self.template:
            raise ConfigError(
                [f"extract.eol_template: must contain {{text}}; got {self.template!r}"]
            )


POOLINGS.register("mean", mean_pool, help="mean over non-pad tokens")
POOLINGS.register("max", max_pool, help="element-wise max over non-pad tokens")
POOLINGS.register("last", last_pool, help="the last non-pad token")
POOLINGS.register("first", first_pool, help="the first token (CLS for encoders)")
POOLINGS.register(
    "eol", last_pool, EOLConfig, help="PromptEOL: a one-word prompt, then the last token"
)
