"""LLM-ESR's dual-view sequential model over any backbone (Liu et al., NeurIPS'24).

One backbone, shared by the two views: each view's sequence goes through the backbone's input
layer, optionally through a cross-attention with the other view (the collaborative sequence
becomes the attention of the semantic queries over the collaborative keys and values, and the
other way round, as in the authors' ``log2feats``), then through the backbone's encoder; the two
outputs side by side are the user's representation, scored against both views of each item.

The retrieval-augmented self-distillation is this model's ``auxiliary_loss``: the
representation of a user's latest training window is pulled (mean squared error, weight
``adapt.llmesr_distill_weight``) towards the mean representation of their most similar users,
computed without gradient. Unlike the authors' code, the cross-attention keeps the backbone's
causal mask: theirs hides only padding, so in next-item training a position could read the item
it is asked to predict from the other view.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Optional

import torch
import torch.nn.functional as F
from torch import nn

from recxplore.adapt.item_embedder import ItemEmbedder
from recxplore.backbones.transformer import attention_mask

if TYPE_CHECKING:
    from recxplore.adapt.fusions.llmesr import DualViewItems


class CrossAttention(nn.Module):
    """Multi-head attention of one sequence's queries over another's keys and values (the
    authors' ``Multi_CrossAttention``: bias-free projections, an output layer, no dropout)."""

    def __init__(self, hidden: int, heads: int = 2):
        super().__init__()
        if hidden % heads:
            raise ValueError(f"the cross-attention needs model.hidden divisible by {heads}")
        self.heads = heads
        self.q = nn.Linear(hidden, hidden, bias=False)
        self.k = nn.Linear(hidden, hidden, bias=False)
        self.v = nn.Linear(hidden, hidden, bias=False)
        self.out = nn.Linear(hidden, hidden)

    def forward(self, x: torch.Tensor, y: torch.Tensor, attend: torch.Tensor) -> torch.Tensor:
        # x, y: (B, L, D); attend: (B, 1, L, L) True where a query may read a key
        B, L, D = x.shape

        def split(t: torch.Tensor) -> torch.Tensor:
            return t.view(B, L, self.heads, D // self.heads).transpose(1, 2)

        q, k, v = split(self.q(x)), split(self.k(y)), split(self.v(y))
        with torch.autocast(x.device.type, enabled=False):  # SDPA in float32, as the blocks'
            a = F.scaled_dot_product_attention(q.float(), k.float(), v.float(), attn_mask=attend)
        return self.out(a.to(q.dtype).transpose(1, 2).reshape(B, L, D))


class _EncoderOnly(ItemEmbedder):
    """The shared backbone's own item embedder: never looked up, since the dual-view model hands
    the backbone each view's vectors; it gives the backbone its sizes (and BERT4Rec its mask
    id)."""

    def all_items(self) -> torch.Tensor:
        raise RuntimeError("a dual-view backbone is always given each view's item vectors")


class DualView(nn.Module):
    def __init__(
        self,
        items: DualViewItems,
        build_backbone: Callable[[ItemEmbedder], nn.Module],
        heads: int = 2,
    ):
        super().__init__()
        self.items = items
        self.encoder = build_backbone(_EncoderOnly(items.n_items, items.view_dim))
        self.objective = self.encoder.objective
        self.padding_invariant = self.encoder.padding_invariant
        self.mask_id = getattr(self.encoder, "mask_id", None)
        settings = items.settings
        self.distill_weight = settings.distill_weight
        if settings.cross_attention:
            self.to_collaborative = CrossAttention(items.view_dim, heads)
            self.to_semantic = CrossAttention(items.view_dim, heads)
        self.cross = settings.cross_attention
        neighbours = items.neighbours
        if self.distill_weight > 0 and neighbours is not None:
            similar = torch.from_numpy(neighbours.similar[:, : settings.similar_users]).long()
            self.register_buffer("similar", similar, persistent=False)
            histories = torch.from_numpy(neighbours.histories).long()
            self.register_buffer("histories", histories, persistent=False)

    def forward(self, seq: torch.Tensor) -> torch.Tensor:
        # seq: (B, L) -> (B, L, 2 * view_dim)
        collaborative, semantic = self.items.views()
        a = self.encoder.embed(seq, lambda ids: collaborative[ids])
        b = self.encoder.embed(seq, lambda ids: semantic[ids])
        if self.cross:
            attend = attention_mask(seq, causal=self.objective == "causal")
            a, b = self.to_collaborative(b, a, attend), self.to_semantic(a, b, attend)
        return torch.cat([self.encoder.encode(a, seq), self.encoder.encode(b, seq)], dim=-1)

    def user_vectors(self, seq: torch.Tensor) -> torch.Tensor:
        return self.forward(self.encoder.user_sequence(seq))[:, -1]  # (B, 2 * view_dim)

    def auxiliary_loss(self, hidden: torch.Tensor, users: torch.Tensor) -> Optional[torch.Tensor]:
        """The self-distillation term for a batch: ``hidden`` (B, L, 2D) is the batch's output,
        ``users`` (B,) the user whose latest training window each row is (-1: an older one)."""
        if self.distill_weight == 0 or not hasattr(self, "similar"):
            return None
        latest = users >= 0
        if not bool(latest.any()):
            return None
        anchors = hidden[latest, -1]  # (b, 2D)
        neighbours = self.similar[users[latest]]  # (b, k)
        with torch.no_grad():  # the authors detach the similar users' representations
            teacher = self.user_vectors(self.histories[neighbours.reshape(-1)])
            teacher = teacher.view(*neighbours.shape, -1).mean(dim=1)
        return self.distill_weight * F.mse_loss(anchors, teacher.to(anchors.dtype))
