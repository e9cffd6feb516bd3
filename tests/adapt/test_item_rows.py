"""Rows computed alone equal the rows of the whole table, and the losses that read only the
rows they index never compute the whole table in training."""

import pytest
import torch
from tests.adapt.test_adapters import make

from recxplore.adapt.item_embedder import ItemRows
from recxplore.registry import ADAPTERS, FUSIONS

ALONE = {  # fusion -> adapters with which rows are computed alone
    "id": list(ADAPTERS),
    "replace": ["linear", "mlp", "moe"],
    "add": ["linear", "mlp", "moe"],
    "concat": ["linear", "mlp", "moe"],
    "delta": ["linear", "mlp", "moe"],
    "semantic_init": list(ADAPTERS),
    "alphafuse": list(ADAPTERS),
    "reconstruct": list(ADAPTERS),
}


@pytest.mark.parametrize("fusion", [f for f in FUSIONS if f != "llmesr"])
@pytest.mark.parametrize("adapter", list(ADAPTERS))
def test_rows_equal_the_whole_tables_rows(adapter, fusion):
    emb, _ = make(adapter, fusion)
    emb.eval()  # no dropout: the same vectors either way
    assert emb.computes_rows == (adapter in ALONE.get(fusion, []))
    ids = torch.tensor([[0, 3, 3], [11, 1, 0]])
    with torch.no_grad():
        whole = emb.all_items()
        torch.testing.assert_close(emb.rows(ids), whole[ids])
        table = ItemRows(emb)
        assert table.shape == tuple(whole.shape)
        picked = table.take(torch.tensor([0, 5, 7, 2]))
        assert picked.shape == (4, whole.shape[1])
        torch.testing.assert_close(picked[torch.tensor([1, 3])], whole[torch.tensor([5, 2])])
    assert not emb.rows(ids)[ids == 0].any()  # padding stays the zero vector


def test_rows_give_gradients_to_their_items_only():
    emb, _ = make("linear", "add")
    emb.rows(torch.tensor([2, 4])).sum().backward()
    touched = emb.ids.weight.grad.abs().sum(1).nonzero().flatten().tolist()
    assert touched == [2, 4] and emb.adapter.proj.weight.grad is not None


@pytest.mark.parametrize("loss", ["in_batch", "sampled", "bce"])
def test_row_losses_never_compute_the_whole_table_in_training(tiny_cfg, monkeypatch, loss):
    from recxplore.adapt.item_embedder import FeatureEmbedder
    from recxplore.pipeline import train

    calls = {"training": 0}
    whole = FeatureEmbedder.all_items

    def counted(self):
        calls["training"] += self.training
        return whole(self)

    monkeypatch.setattr(FeatureEmbedder, "all_items", counted)
    cfg = tiny_cfg.replace(
        **{"extract.model": "tfidf-svd", "adapt.fusion": "replace", "adapt.adapter": "linear"}
    )
    results = train(cfg.replace(**{"train.loss": loss}), progress=False)
    assert calls["training"] == 0 and 0 <= results["metrics"]["test"]["full"]["NDCG@10"] <= 1
    train(cfg.replace(**{"train.loss": "ce"}), progress=False)
    assert calls["training"] > 0  # the full softmax needs the table: the count can move
