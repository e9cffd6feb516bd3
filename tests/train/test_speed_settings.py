"""The trainer's speed settings: bucketed batching, bfloat16 precision, cheaper dropout and
attention, a minimum improvement for early stopping. Each must keep what it replaces."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from recxplore.backbones.transformer import TransformerBlock, attention_mask
from recxplore.dropout import Dropout
from recxplore.pipeline import train
from recxplore.runtime import autocast
from recxplore.train.batches import epoch_batches
from recxplore.train.losses import cross_entropy

CPU = torch.device("cpu")


@pytest.mark.parametrize("bucketed", [False, True])
def test_an_epoch_uses_every_window_once(bucketed):
    lengths = np.random.default_rng(1).integers(1, 201, 3000)
    batches = epoch_batches(lengths, 64, np.random.default_rng(0), bucketed)
    assert sorted(np.concatenate(batches).tolist()) == list(range(3000))
    assert all(len(b) for b in batches)


def test_random_batching_is_the_shuffled_order_cut_in_batch_size():
    lengths = np.arange(1, 101)
    batches = epoch_batches(lengths, 32, np.random.default_rng(5), bucketed=False)
    order = np.random.default_rng(5).permutation(100)
    assert [b.tolist() for b in batches] == [order[s : s + 32].tolist() for s in (0, 32, 64, 96)]


def test_bucketed_batches_pad_less_within_the_same_budget():
    lengths = np.random.default_rng(2).integers(1, 201, 5000)
    rng = np.random.default_rng(0)

    def padded(batches):
        return sum(len(b) * lengths[b].max() for b in batches)

    rand, buck = (epoch_batches(lengths, 128, rng, b) for b in (False, True))
    budget = 128 * lengths.mean()
    assert all(len(b) * lengths[b].max() <= budget or len(b) == 1 for b in buck)
    assert padded(buck) < 0.65 * padded(rand)  # uniform lengths: random pads about 2x
    assert abs(len(buck) - len(rand)) <= 0.1 * len(rand)  # about as many steps an epoch


def test_a_window_longer_than_the_budget_gets_a_batch_of_its_own():
    batches = epoch_batches(np.array([5, 1, 9, 3]), 1, np.random.default_rng(0), True)
    assert sorted(len(b) for b in batches) == [1, 1, 1, 1]


def test_dropout_keeps_the_expected_share_and_scale():
    torch.manual_seed(0)
    drop = Dropout(0.2)
    x = torch.ones(200_000, requires_grad=True)
    y = drop(x)
    kept = y > 0
    assert float(kept.float().mean()) == pytest.approx(0.8, abs=0.005)
    assert torch.allclose(y[kept], torch.tensor(1.25))
    y.sum().backward()
    assert torch.equal(x.grad, y.detach())  # gradient flows only through kept entries
    drop.eval()
    assert drop(x) is x
    with pytest.raises(ValueError, match="dropout probability"):
        Dropout(1.0)


def test_bfloat16_cross_entropy_is_close_to_float32():
    torch.manual_seed(0)
    h = torch.randn(500, 16, requires_grad=True)
    table = torch.randn(300, 16, requires_grad=True)
    targets = torch.randint(1, 300, (500,))
    ref = cross_entropy(h, targets, table)
    ref.backward()
    gh, gt = h.grad.clone(), table.grad.clone()
    h.grad = table.grad = None
    with autocast(CPU, "bfloat16"):
        low = cross_entropy(h, targets, table)
    low.backward()
    assert low.dtype == torch.float32 and table.grad.dtype == torch.float32
    assert float(low.detach()) == pytest.approx(float(ref.detach()), rel=0.01)
    for a, b in ((gh, h.grad), (gt, table.grad)):
        assert F.cosine_similarity(a.flatten(), b.flatten(), dim=0) > 0.999
    assert table.grad[0].abs().max() == 0


@pytest.mark.parametrize("training", [False, True])
def test_bfloat16_attention_matches_float32(training):
    torch.manual_seed(0)
    block = TransformerBlock(32, 2, dropout=0.0, ffn_hidden=32).train(training)
    seq = torch.tensor([[0, 0, 3, 4, 5, 6], [1, 2, 3, 4, 5, 6]])
    x = torch.randn(2, 6, 32)
    attend = attention_mask(seq, causal=True)
    ref = block(x, attend)
    with autocast(CPU, "bfloat16"):
        low = block(x, attend).float()
    real = seq != 0
    assert torch.allclose(low[real], ref[real], atol=0.05)
    assert F.cosine_similarity(low[real], ref[real], dim=-1).min() > 0.999


def test_bfloat16_run_stays_near_float32_and_has_its_own_key(tiny_cfg):
    fp32 = train(tiny_cfg.replace(**{"train.precision": "float32"}), progress=False)
    bf16 = train(tiny_cfg.replace(**{"train.precision": "bfloat16"}), progress=False)
    assert bf16["run_dir"] != fp32["run_dir"]
    a, b = (r["metrics"]["valid"]["full"]["NDCG@10"] for r in (fp32, bf16))
    assert abs(a - b) < 0.1


def test_min_delta_stops_runs_that_creep(tiny_cfg):
    cfg = tiny_cfg.replace(**{"train.epochs": 6, "train.patience": 1, "train.lr": 1e-4})
    creeping = train(cfg, progress=False)
    strict = train(cfg.replace(**{"train.min_delta": 0.5}), progress=False)
    assert strict["timing"]["best_epoch"] == 1  # nothing beats epoch 1 by 0.5
    assert strict["timing"]["epochs"] == 2
    assert creeping["timing"]["epochs"] >= strict["timing"]["epochs"]


def test_bucketed_training_runs_every_backbone(tiny_cfg):
    for backbone in ("sasrec", "bert4rec", "gru4rec"):
        cfg = tiny_cfg.replace(**{"model.backbone": backbone, "train.batching": "bucketed"})
        assert 0.0 <= train(cfg, progress=False)["metrics"]["test"]["full"]["NDCG@10"] <= 1.0


@pytest.mark.parametrize("backbone", ["sasrec", "bert4rec"])
def test_evaluation_padded_per_batch_ranks_as_padded_to_max_len(tiny_cfg, backbone):
    from recxplore.cache import home_dir
    from recxplore.data.prepare import prepare
    from recxplore.eval.protocol import rank_users
    from recxplore.train.loop import build_evaluations
    from recxplore.train.run import build_model

    cfg = tiny_cfg.replace(**{"model.backbone": backbone, "model.max_len": 12})
    ds, _ = prepare(cfg.data, home_dir(cfg.paths.home))
    model = build_model(cfg, ds)
    valid, _ = build_evaluations(ds, cfg)
    lengths = {len(x) for x in valid.data.inputs}
    assert len(lengths) > 1  # histories of several lengths, some shorter than max_len
    kw = dict(max_len=12, batch_size=7, mask_history=True, device=CPU)
    trimmed = rank_users(model, valid.data, valid.negatives, **kw)
    model.padding_invariant = False  # pad every batch to max_len, in the users' order
    padded = rank_users(model, valid.data, valid.negatives, **kw)
    assert np.array_equal(trimmed[0], padded[0]) and np.array_equal(trimmed[1], padded[1])


def test_warmup_ramps_the_learning_rate_linearly(tiny_cfg, monkeypatch):
    seen = []
    real = torch.optim.AdamW.step

    def recording(self, *args, **kwargs):
        seen.append(self.param_groups[0]["lr"])
        return real(self, *args, **kwargs)

    monkeypatch.setattr(torch.optim.AdamW, "step", recording)
    cfg = tiny_cfg.replace(**{"train.warmup_steps": 5, "train.lr": 0.01})
    train(cfg, progress=False)
    assert seen[:5] == pytest.approx([0.002, 0.004, 0.006, 0.008, 0.01])
    assert all(lr == pytest.approx(0.01) for lr in seen[5:]) and len(seen) > 5


def test_a_masked_objective_waits_as_many_targets_as_a_next_item_one(tiny_cfg):
    from types import SimpleNamespace

    from recxplore.train.loop import patience_epochs

    cfg = tiny_cfg.replace(**{"train.patience": 3, "model.mask_prob": 0.25})
    masked, causal = SimpleNamespace(objective="masked"), SimpleNamespace(objective="causal")
    assert patience_epochs(masked, cfg) == 12 and patience_epochs(causal, cfg) == 3
    by_epochs = cfg.replace(**{"train.patience_unit": "epochs"})
    assert patience_epochs(masked, by_epochs) == 3
