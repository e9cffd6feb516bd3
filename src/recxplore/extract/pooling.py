"""Token aggregation: (B, L, D) hidden states + (B, L) attention mask -> (B, D).

Correct under left and right padding: positions are located from the mask, never assumed.
``eol`` (PromptEOL) wraps the text in a one-word prompt before tokenisation (its setting
``template``) and then takes the last token, so here it is the same as ``last``.
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
