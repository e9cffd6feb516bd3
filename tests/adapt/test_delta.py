"""The delta fusion and the ID parts of fusions: an item never in training is scored from its
adapted features alone, and only what the fusion trains gets gradients."""

import torch
from torch import nn

from recxplore.adapt.fusions.add import AddFusion
from recxplore.adapt.fusions.concat import ConcatFusion
from recxplore.adapt.fusions.delta import DeltaConfig, DeltaFusion

N_ITEMS, D_IN, HIDDEN = 6, 8, 4


def _features():
    torch.manual_seed(0)
    return torch.cat([torch.zeros(1, D_IN), torch.randn(N_ITEMS, D_IN)])


def _seen():
    seen = torch.ones(N_ITEMS + 1, dtype=torch.bool)
    seen[0] = seen[3] = False  # item 3 is cold
    return seen


def _train(embedder, steps=5, lr=1.0):
    opt = torch.optim.SGD(embedder.parameters(), lr=lr)
    for _ in range(steps):  # a full softmax over every item: cold item 3 is a negative
        table = embedder.all_items()
        logits = table[[1, 2, 4]] @ table.T
        loss = nn.functional.cross_entropy(logits, torch.tensor([2, 4, 5]))
        extra = embedder.extra_loss(torch.tensor([2, 4, 5]), table)
        opt.zero_grad()
        (loss + (extra if extra is not None else 0)).backward()
        opt.step()


def test_a_cold_items_vector_is_its_adapted_features():
    fusion = DeltaFusion(_features(), nn.Linear(D_IN, HIDDEN), HIDDEN, 0.0, DeltaConfig(), _seen())
    _train(fusion)
    fusion.eval()
    with torch.no_grad():
        table, semantic = fusion.all_items(), fusion.semantic()
    torch.testing.assert_close(table[3], semantic[3])
    assert not torch.allclose(table[1], semantic[1])  # a warm item learned a delta
    assert torch.all(fusion.delta.grad[3] == 0) and fusion.delta.grad[1].abs().sum() > 0


def test_the_delta_starts_at_zero_and_its_penalty_holds_it():
    fusion = DeltaFusion(_features(), nn.Linear(D_IN, HIDDEN), HIDDEN, 0.0, DeltaConfig(), _seen())
    assert torch.all(fusion.delta == 0)
    free = DeltaFusion(_features(), nn.Linear(D_IN, HIDDEN), HIDDEN, 0.0, DeltaConfig(), _seen())
    held = DeltaFusion(
        _features(), nn.Linear(D_IN, HIDDEN), HIDDEN, 0.0, DeltaConfig(l2=1.0), _seen()
    )
    held.adapter.load_state_dict(free.adapter.state_dict())
    _train(free, lr=1e-3)
    _train(held, lr=1e-3)
    assert held.delta.norm() < free.delta.norm()


def test_fusions_with_ids_give_a_cold_item_no_id_part():
    add = AddFusion(_features(), nn.Linear(D_IN, HIDDEN), HIDDEN, 0.0, _seen())
    concat = ConcatFusion(_features(), nn.Linear(D_IN, HIDDEN), HIDDEN, 0.0, _seen())
    for fusion in (add, concat):
        _train(fusion)
        fusion.eval()
        assert torch.all(fusion.ids.weight.grad[3] == 0) and fusion.ids.weight.grad[1].any()
    with torch.no_grad():
        semantic = add.semantic()
        torch.testing.assert_close(add.all_items()[3], semantic[3])
        semantic = concat.semantic()
        no_ids = concat.merge(torch.cat([torch.zeros_like(semantic), semantic], -1))
        torch.testing.assert_close(concat.all_items()[3], no_ids[3])


def test_a_cold_start_run_reports_its_cold_targets(tiny_cfg):
    from tests.conftest import assert_metrics_match_ranks

    from recxplore.pipeline import train

    cfg = tiny_cfg.replace(
        **{
            "data.cold_share": 0.2,
            "extract.model": "tfidf-svd",
            "extract.static_dim": 8,
            "adapt.pca": None,
            "adapt.fusion": "delta",
            "adapt.adapter": "linear",
        }
    )
    results = train(cfg, progress=False)
    assert_metrics_match_ranks(results)
    groups = results["groups"]["test"]
    assert groups["cold: cold"]["users"] > 0
    assert (
        groups["cold: cold"]["users"] + groups["cold: warm"]["users"]
        == sum(1 for _ in open(f"{results['run_dir']}/test_ranks.csv")) - 1
    )
    assert results["dataset_stats"]["cold_items"] == round(0.2 * 25)
