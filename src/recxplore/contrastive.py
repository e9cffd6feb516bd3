"""LLMEmb's symmetric contrastive loss (liuqidong07/LLMEmb: ``Contrastive_Loss`` in llm/llama.py,
``Contrastive_Loss2`` in models/utils.py), used by SCFT and by the ``align`` fusion.

Between two views (B, D) of the same B items: the logits are similarities / temperature, and the
targets are a softmax of the views' mean self-similarities x temperature rather than the
identity, so that items whose vectors coincide (duplicates, or a target that occurs twice in a
batch) share their target instead of being pushed apart.
"""

from __future__ import annotations

import torch


def contrastive_loss(
    a: torch.Tensor, b: torch.Tensor, temperature: float | torch.Tensor
) -> torch.Tensor:
    # In float32 whatever the autocast: an LLM's pooled states are long and nearly parallel
    # (SmolLM2: norm about 35, mean cosine 0.97), so their dot products, about 1,200, differ by
    # less than bfloat16's spacing there (8), and a bfloat16 loss is mostly rounding.
    with torch.autocast(a.device.type, enabled=False):
        a, b = a.float(), b.float()
        logits = a @ b.T / temperature
        targets = torch.softmax((a @ a.T + b @ b.T) / 2 * temperature, dim=-1)
        forward = -(targets * torch.log_softmax(logits, dim=-1)).sum(-1)
        backward = -(targets.T * torch.log_softmax(logits.T, dim=-1)).sum(-1)
        return ((forward + backward) / 2).mean()
