"""A linear map from the features to the hidden size."""

from __future__ import annotations

import torch
from torch import nn

from recxplore.adapt.inputs import ItemInputs
from recxplore.registry import ADAPTERS


class LinearAdapter(nn.Module):
    row_wise = True  # each item's output reads its own features alone

    def __init__(self, d_in: int, d_out: int):
        super().__init__()
        self.proj = nn.Linear(d_in, d_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (N, d_in) -> (N, d_out)
        return self.proj(x)


def build_linear(d_in: int, d_out: int, settings: None, inputs: ItemInputs) -> nn.Module:
    return LinearAdapter(d_in, d_out)


ADAPTERS.register("linear", build_linear, help="one linear layer")
