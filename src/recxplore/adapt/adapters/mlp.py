"""A two-layer perceptron from the features to the hidden size."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from recxplore.adapt.inputs import ItemInputs
from recxplore.config import option
from recxplore.registry import ADAPTERS

ACTIVATIONS = {"gelu": nn.GELU, "relu": nn.ReLU, "tanh": nn.Tanh}


@dataclass(frozen=True, kw_only=True)
class MLPConfig:
    hidden: int = option(256, "mlp: hidden width", ge=1)
    activation: Literal["gelu", "relu", "tanh"] = option("gelu", "mlp: activation")


class MLPAdapter(nn.Module):
    row_wise = True  # each item's output reads its own features alone

    def __init__(self, d_in: int, d_out: int, hidden: int, activation: str):
        super().__init__()
        act = ACTIVATIONS[activation]
        self.net = nn.Sequential(nn.Linear(d_in, hidden), act(), nn.Linear(hidden, d_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (N, d_in) -> (N, d_out)
        return self.net(x)


def build_mlp(d_in: int, d_out: int, settings: MLPConfig, inputs: ItemInputs) -> nn.Module:
    return MLPAdapter(d_in, d_out, settings.hidden, settings.activation)


ADAPTERS.register("mlp", build_mlp, MLPConfig, help="two linear layers with an activation")
