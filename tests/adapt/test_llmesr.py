"""LLM-ESR: two views side by side through one shared backbone, a cross-attention that keeps
causality, self-distillation that trains only the distilled user's side, similar users found
from user embeddings, and the static extractor refused with the config."""

import numpy as np
import pytest
import torch

from recxplore import config
from recxplore.adapt.fusions.llmesr import LLMESRConfig, build_llmesr
from recxplore.adapt.inputs import ItemInputs
from recxplore.backbones.dual_view import DualView
from recxplore.errors import ConfigError
from recxplore.extract.users import UserNeighbours, latest_inputs, most_similar, user_prompts
from recxplore.registry import BACKBONES
from recxplore.train.batches import causal_windows, latest_window_owners, masked_windows

N_ITEMS, N_USERS, HIDDEN, MAX_LEN = 20, 6, 8, 6


def _model(backbone="sasrec", cross=True, weight=0.1):
    rng = np.random.default_rng(0)
    features = np.concatenate([np.zeros((1, 12)), rng.normal(size=(N_ITEMS, 12))]).astype(
        np.float32
    )
    histories = rng.integers(1, N_ITEMS + 1, size=(N_USERS, MAX_LEN))
    similar = np.array([[(u + 1) % N_USERS, (u + 2) % N_USERS] for u in range(N_USERS)])
    inputs = ItemInputs(features=features, neighbours=UserNeighbours(similar, histories))
    settings = LLMESRConfig(cross_attention=cross, distill_weight=weight, similar_users=2)
    torch.manual_seed(0)
    items = build_llmesr(N_ITEMS, HIDDEN, inputs, lambda d: None, 0.0, settings)
    m = config.load(
        None,
        [f"model.hidden={HIDDEN}", "model.heads=2", "model.layers=1", f"model.max_len={MAX_LEN}"],
    ).model
    return DualView(items, lambda e: BACKBONES[backbone](e, m))


@pytest.mark.parametrize("backbone", ["sasrec", "gru4rec", "bert4rec"])
def test_the_two_views_come_side_by_side_through_one_shared_backbone(backbone):
    model = _model(backbone)
    seq = torch.tensor([[0, 0, 3, 4, 5, 6], [1, 2, 3, 4, 5, 6]])
    assert model(seq).shape == (2, MAX_LEN, 2 * HIDDEN)
    assert model.user_vectors(seq).shape == (2, 2 * HIDDEN)
    table = model.items.all_items()
    assert table.shape == (N_ITEMS + 1, 2 * HIDDEN) and torch.all(table[0] == 0)
    # one encoder: no second copy of the backbone's blocks
    assert sum(1 for n, _ in model.named_modules() if n == "encoder") == 1


@pytest.mark.parametrize("backbone", ["sasrec", "gru4rec"])
def test_the_cross_attention_never_lets_a_position_read_a_later_item(backbone):
    model = _model(backbone).eval()
    seq = torch.tensor([[1, 2, 3, 4, 5, 6]])
    changed = seq.clone()
    changed[0, -1] = 9
    with torch.no_grad():
        before, after = model(seq), model(changed)
    torch.testing.assert_close(before[:, :-1], after[:, :-1])
    assert not torch.allclose(before[:, -1], after[:, -1])


def test_every_trained_part_gets_a_gradient_and_the_features_stay_frozen():
    model = _model()
    seq = torch.tensor([[0, 1, 2, 3, 4, 5]])
    hidden = model(seq)
    loss = hidden[:, -1] @ model.items.all_items().T
    loss.logsumexp(-1).sum().backward()
    trained = {n for n, p in model.named_parameters() if p.grad is not None and p.grad.abs().sum()}
    assert {"items.collaborative.table.weight", "to_collaborative.q.weight"} <= trained
    assert any(n.startswith("items.semantic.adapter") for n in trained)
    assert any(n.startswith("encoder.blocks") for n in trained)
    assert "features" not in dict(model.named_parameters())  # a buffer, never trained


def test_the_distillation_trains_only_the_users_own_representation():
    model = _model()
    seq = torch.tensor([[0, 1, 2, 3, 4, 5], [2, 3, 4, 5, 6, 7]])
    hidden = model(seq)
    loss = model.auxiliary_loss(hidden, torch.tensor([0, 3]))
    assert loss is not None and loss.item() > 0
    # the similar users' side carries no gradient: from a detached batch nothing trains
    assert not model.auxiliary_loss(hidden.detach(), torch.tensor([0, 3])).requires_grad
    assert model.auxiliary_loss(hidden, torch.tensor([-1, -1])) is None  # older windows only
    assert _model(weight=0.0).auxiliary_loss(hidden, torch.tensor([0, 3])) is None


@pytest.mark.parametrize("make", [causal_windows, masked_windows])
def test_each_user_owns_exactly_their_latest_window(make):
    seqs = [np.arange(1, 13), np.array([5]), np.arange(20, 24)]
    windows = make(seqs, 4)
    owners = latest_window_owners(seqs, make, 4)
    assert len(owners) == len(windows)
    for user, seq in enumerate(seqs):
        mine = np.flatnonzero(owners == user)
        if len(make([seq], 4)):
            assert len(mine) == 1 and windows[mine[0]][-1] == seq[-1]


def test_similar_users_are_by_cosine_never_oneself_and_only_users_with_a_history():
    emb = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.95, 0.05], [1.0, 0.01]])
    candidates = np.array([True, True, True, True, False])
    similar = most_similar(emb, candidates, 2)
    assert similar.shape == (5, 2)
    assert all(u not in row for u, row in enumerate(similar))
    assert 4 not in similar  # no history: nobody's neighbour
    assert list(similar[0]) == [3, 1]  # cosine order


def test_user_prompts_and_histories_hold_only_training_items(tiny_cfg):
    from recxplore.cache import home_dir
    from recxplore.data.prepare import prepare

    ds, _ = prepare(tiny_cfg.data, home_dir(tiny_cfg.paths.home))
    prompts = user_prompts(ds, max_items=50)
    histories = latest_inputs(ds, 8)
    for user in range(ds.n_users):
        seq = ds.sequence(user)
        held_out = {int(seq[-1]), int(seq[-2])} - set(int(i) for i in seq[:-2])
        assert not held_out & set(int(i) for i in histories[user] if i)
        assert "interacted" in prompts[user]


def test_the_static_extractor_is_refused_before_training():
    with pytest.raises(ConfigError, match="llmesr_distill_weight=0"):
        config.load(None, ["adapt.fusion=llmesr", "extract.model=tfidf-svd"])
    cfg = config.load(
        None, ["adapt.fusion=llmesr", "extract.model=tfidf-svd", "adapt.llmesr_distill_weight=0"]
    )
    assert cfg.adapt.fusion == "llmesr"
