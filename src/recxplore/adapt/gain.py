"""A learned output scale for an adapter (``adapt.gain=learned``).

A feature-based item embedder multiplies its adapter's output by a fixed gain that starts item
vectors at the ID table's scale. How fast item vectors can then grow depends on each adapter's
parametrisation; one trained scalar, starting at 1 (so at the fixed gain), lets every adapter
set its own scale. It is kept as a logarithm so that it stays positive.
"""

from __future__ import annotations

import torch
from torch import nn


class LearnedGain(nn.Module):
    def __init__(self, adapter: nn.Module):
        super().__init__()
        self.adapter = adapter
        self.log_gain = nn.Parameter(torch.zeros(()))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.adapter(features) * self.log_gain.exp()
