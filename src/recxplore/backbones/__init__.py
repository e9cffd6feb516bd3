"""Sequential backbones: name -> builder(item embedder, ModelConfig)."""

from __future__ import annotations

from typing import Callable

from torch import nn

from recxplore.adapt.item_embedder import ItemEmbedder
from recxplore.backbones.bert4rec import BERT4Rec
from recxplore.backbones.gru4rec import GRU4Rec
from recxplore.backbones.sasrec import SASRec
from recxplore.config import ModelConfig
from recxplore.registry import Registry

BACKBONES: Registry[Callable[[ItemEmbedder, ModelConfig], nn.Module]] = Registry("backbone")
BACKBONES.register("sasrec", lambda items, m: SASRec(
    items, hidden=m.hidden, layers=m.layers, heads=m.heads, dropout=m.dropout, max_len=m.max_len))
BACKBONES.register("gru4rec", lambda items, m: GRU4Rec(
    items, hidden=m.hidden, layers=m.layers, dropout=m.dropout, max_len=m.max_len))
BACKBONES.register("bert4rec", lambda items, m: BERT4Rec(
    items, hidden=m.hidden, layers=m.layers, heads=m.heads, dropout=m.dropout, max_len=m.max_len))


def build_backbone(items: ItemEmbedder, cfg: ModelConfig) -> nn.Module:
    return BACKBONES[cfg.backbone](items, cfg)
