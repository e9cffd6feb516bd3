"""Adapters: frozen item features (rows, d_in) -> item vectors (rows, hidden), trained jointly
with the backbone. One class per adapter; ``ADAPTERS`` maps config names to builders."""

from __future__ import annotations

from typing import Callable, Optional

import torch
import torch.nn.functional as F
from torch import nn

from recxplore.config import AdaptConfig
from recxplore.registry import Registry


class LinearAdapter(nn.Module):
    def __init__(self, d_in: int, d_out: int):
        super().__init__()
        self.proj = nn.Linear(d_in, d_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (N, d_in) -> (N, d_out)
        return self.proj(x)


class MLPAdapter(nn.Module):
    def __init__(self, d_in: int, d_out: int, hidden: int, activation: str):
        super().__init__()
        act = {"gelu": nn.GELU, "relu": nn.ReLU, "tanh": nn.Tanh}[activation]
        self.net = nn.Sequential(nn.Linear(d_in, hidden), act(), nn.Linear(hidden, d_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class MoEAdapter(nn.Module):
    """UniSRec's mixture of parametric-whitening experts (Hou et al., KDD 2022).

    expert_k(x) = (x - b_k) W_k; gate = softmax(x W_g + eps * softplus(x W_n)), eps ~ N(0, 1)
    only in training; output = sum_k gate_k * expert_k(x).
    """

    def __init__(self, d_in: int, d_out: int, experts: int, noise: bool):
        super().__init__()
        self.noise = noise
        self.bias = nn.Parameter(torch.zeros(experts, d_in))  # b_k
        self.weight = nn.Parameter(torch.empty(experts, d_in, d_out))  # W_k
        nn.init.normal_(self.weight, std=d_in ** -0.5)
        self.gate = nn.Linear(d_in, experts, bias=False)  # W_g
        self.gate_noise = nn.Linear(d_in, experts, bias=False)  # W_n
        nn.init.zeros_(self.gate.weight)
        nn.init.zeros_(self.gate_noise.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # x: (N, d_in) -> experts (N, G, d_out), gate (N, G)
        experts = torch.einsum("ngd,gde->nge", x[:, None, :] - self.bias, self.weight)
        logits = self.gate(x)
        if self.training and self.noise:
            logits = logits + torch.randn_like(logits) * F.softplus(self.gate_noise(x))
        return (experts * logits.softmax(-1).unsqueeze(-1)).sum(1)


class PQAdapter(nn.Module):
    """VQ-Rec-style: an item is M discrete codes; its vector is the mean of M learned code
    embeddings. The features themselves are not read (only their offline codes)."""

    def __init__(self, codes: torch.Tensor, d_out: int, codes_per_subvector: int = 256):
        super().__init__()
        M = codes.shape[1]
        self.register_buffer("codes", codes.long(), persistent=False)  # (rows, M)
        self.register_buffer("offsets", torch.arange(M) * codes_per_subvector, persistent=False)
        self.embedding = nn.Embedding(M * codes_per_subvector, d_out)
        nn.init.normal_(self.embedding.weight, std=0.02)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x ignored: all rows, (rows, d_out)
        return self.embedding(self.codes + self.offsets).mean(1)


Builder = Callable[[int, int, AdaptConfig, Optional[torch.Tensor]], nn.Module]
ADAPTERS: Registry[Builder] = Registry("adapter")
ADAPTERS.register("linear", lambda d_in, d_out, c, codes: LinearAdapter(d_in, d_out))
ADAPTERS.register("mlp", lambda d_in, d_out, c, codes: MLPAdapter(d_in, d_out, c.mlp_hidden,
                                                                  c.mlp_activation))
ADAPTERS.register("moe", lambda d_in, d_out, c, codes: MoEAdapter(d_in, d_out, c.moe_experts,
                                                                  c.moe_noise))
ADAPTERS.register("pq", lambda d_in, d_out, c, codes: PQAdapter(codes, d_out))
