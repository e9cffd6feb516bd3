"""Every registered backbone: shapes, padding invariance, and causal masking where it applies."""

import pytest
import torch

from recxplore.adapt.item_embedder import IDEmbedder
from recxplore.config import ModelConfig
from recxplore.registry import BACKBONES


def build(name, n_items=20, max_len=6):
    torch.manual_seed(0)
    cfg = ModelConfig(backbone=name, hidden=8, layers=2, heads=2, dropout=0.0, max_len=max_len)
    return BACKBONES[name](IDEmbedder(n_items, 8), cfg).eval()


@pytest.mark.parametrize("name", list(BACKBONES))
def test_shapes(name):
    model = build(name)
    seq = torch.tensor([[0, 0, 3, 4, 5, 6], [1, 2, 3, 4, 5, 6]])
    assert model(seq).shape == (2, 6, 8)
    assert model.user_vectors(seq).shape == (2, 8)


@pytest.mark.parametrize("name", list(BACKBONES))
def test_left_padding_does_not_change_the_prediction(name):
    model = build(name)
    short = torch.tensor([[0, 0, 0, 7, 8, 9]])
    shorter_window = torch.tensor([[0, 7, 8, 9]])
    a, b = model.user_vectors(short), model.user_vectors(shorter_window)
    if name == "gru4rec":  # a GRU reads the padding steps; only check it is finite
        assert torch.isfinite(a).all()
    else:
        assert torch.allclose(a, b, atol=1e-5)


def test_sasrec_is_causal():
    model = build("sasrec")
    seq = torch.tensor([[1, 2, 3, 4, 5, 6]])
    changed = torch.tensor([[1, 2, 3, 4, 5, 9]])
    assert torch.allclose(model(seq)[:, :5], model(changed)[:, :5], atol=1e-6)
    assert not torch.allclose(model(seq)[:, 5], model(changed)[:, 5])


def test_bert4rec_mask_token_is_not_an_item():
    model = build("bert4rec", n_items=20)
    assert model.mask_id == 21
    seq = torch.tensor([[1, 2, 21, 4]])
    assert model(seq).shape == (1, 4, 8)


def test_bert4rec_positions_start_at_the_items_scale():
    """At N(0, 1) the positions drowned the item vectors (std 0.02) in the input LayerNorm."""
    torch.manual_seed(0)
    model = BACKBONES["bert4rec"](IDEmbedder(500, 64), ModelConfig(max_len=200))
    assert abs(float(model.positions.weight.std()) - 0.02) < 0.002


def test_sasrec_positions_start_at_the_items_scale():
    torch.manual_seed(0)
    model = BACKBONES["sasrec"](IDEmbedder(500, 64), ModelConfig(max_len=200))
    assert abs(float(model.positions.weight.std()) - 0.02) < 0.002
