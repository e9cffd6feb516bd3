"""Semantic reconstruction: a trained ID table, an MLP tying it to the frozen features by
1 - mean cosine, and a cold item scored from its reconstruction (con) or not at all (gen)."""

import csv

import pytest
import torch
from torch.nn import functional as F

from recxplore.adapt.fusions.reconstruct import Reconstruct, ReconstructConfig
from recxplore.adapt.item_embedder import INIT_STD

N_ITEMS, D_IN, HIDDEN = 6, 8, 4


def _features():
    torch.manual_seed(0)
    return torch.cat([torch.zeros(1, D_IN), torch.randn(N_ITEMS, D_IN) * 3 + 1])


def _seen():
    seen = torch.ones(N_ITEMS + 1, dtype=torch.bool)
    seen[0] = seen[3] = False  # item 3 is cold
    return seen


def _step(model, opt):
    """One step of a full softmax over every item (cold item 3 a negative) plus the extra loss."""
    table = model.all_items()
    loss = F.cross_entropy(table[[1, 2, 4]] @ table.T, torch.tensor([2, 4, 5]))
    extra = model.extra_loss(torch.tensor([2, 4, 5]), table)
    opt.zero_grad()
    (loss + (extra if extra is not None else 0)).backward()
    opt.step()


@pytest.mark.parametrize("direction", ["con", "gen"])
def test_the_loss_is_one_minus_the_mean_cosine_over_items_in_training(direction):
    settings = ReconstructConfig(weight=0.3, direction=direction)
    model = Reconstruct(_features(), HIDDEN, settings, _seen())
    assert abs(model.table.weight[1:].std().item() - INIT_STD) < 0.01
    warm = [1, 2, 4, 5, 6]
    ids, language = model.table.weight[warm], model.features[warm]
    made = model.reconstructor(language if direction == "con" else ids)
    target = ids if direction == "con" else language
    cos = torch.stack([F.cosine_similarity(m, t, dim=0) for m, t in zip(made, target)])
    want = 0.3 * (1 - cos.mean())
    torch.testing.assert_close(model.extra_loss(torch.tensor([1]), model.all_items()), want)
    off = Reconstruct(_features(), HIDDEN, ReconstructConfig(weight=0.0), _seen())
    assert off.extra_loss(torch.tensor([1]), off.all_items()) is None


def test_gradients_reach_the_id_rows_and_the_mlp_not_the_features_nor_a_cold_row():
    model = Reconstruct(_features(), HIDDEN, ReconstructConfig(), _seen())
    model.extra_loss(torch.tensor([1]), model.all_items()).backward()
    grad = model.table.weight.grad
    assert grad[[1, 2, 4, 5, 6]].abs().sum(1).gt(0).all()
    assert not grad[[0, 3]].any()
    assert all(p.grad is not None and p.grad.any() for p in model.reconstructor.parameters())
    assert not model.features.requires_grad and "features" not in model.state_dict()


def test_training_brings_the_reconstruction_closer():
    model = Reconstruct(_features(), HIDDEN, ReconstructConfig(weight=1.0), _seen())
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    before = model.extra_loss(torch.tensor([1]), model.all_items()).item()
    for _ in range(50):
        _step(model, opt)
    assert model.extra_loss(torch.tensor([1]), model.all_items()).item() < before / 2


def test_a_cold_item_is_its_reconstruction_at_the_warm_rows_mean_norm_and_trains_nothing():
    model = Reconstruct(_features(), HIDDEN, ReconstructConfig(), _seen())
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    for _ in range(3):
        _step(model, opt)
    with torch.no_grad():
        table = model.all_items()
        warm = model.table.weight[[1, 2, 4, 5, 6]].norm(dim=1).mean()
        made = model.reconstructor(model.features[3])
        torch.testing.assert_close(table[3], F.normalize(made, dim=0) * warm)
        torch.testing.assert_close(table[1], model.table.weight[1])
        assert not table[0].any()
        ids = torch.tensor([[0, 3], [1, 3]])
        torch.testing.assert_close(model.rows(ids), table[ids])
    # the cold row is a negative of the training softmax, but only the extra loss trains the MLP
    model.zero_grad(set_to_none=True)
    model.all_items()[3].sum().backward()
    assert all(p.grad is None for p in model.reconstructor.parameters())
    assert model.table.weight.grad is None or not model.table.weight.grad.any()


def test_gen_gives_a_cold_item_the_zero_vector():
    model = Reconstruct(_features(), HIDDEN, ReconstructConfig(direction="gen"), _seen())
    with torch.no_grad():
        assert not model.all_items()[3].any()
    everyone = Reconstruct(_features(), HIDDEN, ReconstructConfig(), None)
    with torch.no_grad():
        torch.testing.assert_close(everyone.all_items(), everyone.table.weight)


def test_a_tiny_run_trains_and_logs_its_reconstruction_loss(tiny_cfg):
    from tests.conftest import assert_metrics_match_ranks

    from recxplore.pipeline import train

    cfg = tiny_cfg.replace(
        **{
            "extract.model": "tfidf-svd",
            "extract.static_dim": 8,
            "adapt.pca": None,
            "adapt.fusion": "reconstruct",
        }
    )
    results = train(cfg, progress=False)
    assert_metrics_match_ranks(results)
    assert results["config"]["adapt"]["reconstruct_direction"] == "con"
    epochs = list(csv.DictReader(open(f"{results['run_dir']}/metrics.csv")))
    assert epochs and all(0 < float(e["extra_loss"]) <= 0.2 for e in epochs)  # 0.1 x (1 - cos)
