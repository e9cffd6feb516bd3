import pytest
import torch
import torch.nn.functional as F

from recxplore.registry import LOSSES
from recxplore.train.losses import cross_entropy


def test_chunked_cross_entropy_matches_full_logits():
    torch.manual_seed(0)
    h = torch.randn(300, 8, requires_grad=True)
    table = torch.randn(40, 8, requires_grad=True)
    targets = torch.randint(1, 40, (300,))
    loss = cross_entropy(h, targets, table)
    loss.backward()
    gh, gt = h.grad.clone(), table.grad.clone()
    h.grad = table.grad = None
    logits = h @ table.T
    logits[:, 0] = float("-inf")
    ref = F.cross_entropy(logits, targets)
    ref.backward()
    assert loss.item() == pytest.approx(ref.item(), rel=1e-5)
    assert torch.allclose(gh, h.grad, atol=1e-6) and torch.allclose(gt, table.grad, atol=1e-6)
    assert gt[0].abs().max() == 0  # padding row gets no gradient


@pytest.mark.parametrize("name", list(LOSSES))
def test_every_loss_decreases_on_a_fixed_batch(name):
    torch.manual_seed(0)
    h = torch.randn(64, 8, requires_grad=True)
    table = torch.nn.Parameter(torch.randn(30, 8) * 0.1)
    targets = torch.randint(1, 30, (64,))
    opt = torch.optim.Adam([h, table], lr=0.05)
    gen = torch.Generator().manual_seed(0)
    losses = []
    for _ in range(30):
        loss = LOSSES[name](h, targets, table, gen, 8 if name not in ("ce", "in_batch") else 0)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]


def test_bce_negatives_never_hit_the_target():
    from recxplore.train.losses import _uniform_excluding

    targets = torch.randint(1, 6, (5000,))
    negs = _uniform_excluding(targets, 5, 3, torch.Generator().manual_seed(0))
    assert (negs != targets[:, None]).all() and negs.min() >= 1 and negs.max() <= 5
    assert set(negs.unique().tolist()) == {1, 2, 3, 4, 5}


def test_in_batch_softmax_is_a_softmax_over_the_batch_targets_less_log_q():
    from recxplore.train.losses import in_batch_softmax, log_item_frequency

    torch.manual_seed(1)
    h, table = torch.randn(6, 4), torch.randn(10, 4)
    targets = torch.tensor([3, 5, 3, 7, 9, 5])
    log_q = torch.log(torch.linspace(0.05, 0.2, 10))
    items = torch.tensor([3, 5, 7, 9])
    logits = h @ table[items].T - log_q[items]
    want = F.cross_entropy(logits, torch.tensor([0, 1, 0, 2, 3, 1]))
    torch.testing.assert_close(in_batch_softmax(h, targets, table, log_q=log_q), want)
    freq = log_item_frequency([[1, 2, 2], [2, 3]], 4).exp()
    torch.testing.assert_close(freq, torch.tensor([1.0, 2.0, 4.0, 2.0, 1.0]) / 10)


def test_in_batch_training_end_to_end(tiny_cfg):
    from recxplore.pipeline import train

    results = train(tiny_cfg.replace(**{"train.loss": "in_batch"}), progress=False)
    assert 0 <= results["metrics"]["test"]["full"]["NDCG@10"] <= 1
