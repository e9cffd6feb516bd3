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
        loss = LOSSES[name](h, targets, table, gen, 8 if name != "ce" else 0)
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
