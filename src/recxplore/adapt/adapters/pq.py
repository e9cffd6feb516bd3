"""VQ-Rec-style: an item is M discrete codes (OPQ, computed offline by ``adapt.pq``); its vector
is the mean of M learned code embeddings. The features themselves are not read."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from recxplore.adapt.inputs import ItemInputs
from recxplore.adapt.pq import CODES
from recxplore.config import option
from recxplore.registry import ADAPTERS


@dataclass(frozen=True, kw_only=True)
class PQConfig:
    subvectors: int = option(32, "pq: sub-vectors per item (must divide the feature size)", ge=1)


class PQAdapter(nn.Module):
    def __init__(self, codes: torch.Tensor, d_out: int, codes_per_subvector: int = CODES):
        super().__init__()
        M = codes.shape[1]
        self.register_buffer("codes", codes.long(), persistent=False)  # (rows, M)
        self.register_buffer("offsets", torch.arange(M) * codes_per_subvector, persistent=False)
        self.embedding = nn.Embedding(M * codes_per_subvector, d_out)
        nn.init.normal_(self.embedding.weight, std=0.02)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x ignored: all rows, (rows, d_out)
        return self.embedding(self.codes + self.offsets).mean(1)


def build_pq(d_in: int, d_out: int, settings: PQConfig, inputs: ItemInputs) -> nn.Module:
    assert inputs.codes is not None, "the pipeline hands pq its codes (requires=codes)"
    return PQAdapter(torch.from_numpy(inputs.codes), d_out)


ADAPTERS.register(
    "pq",
    build_pq,
    PQConfig,
    requires=("codes",),
    help="VQ-Rec: OPQ codes + learned code embeddings",
)
