import numpy as np
import pytest
import torch

from recxplore import config
from recxplore.adapt.adapters.moe import MoEAdapter
from recxplore.adapt.fusions import WITHOUT_ADAPTER
from recxplore.adapt.inputs import ItemInputs
from recxplore.adapt.reduce import pca_transform
from recxplore.config import AdaptConfig
from recxplore.registry import ADAPTERS, FUSIONS
from recxplore.train.run import build_item_embedder

# the fusions that pass features through an adapter (the others have their own tests)
FEATURE_FUSIONS = [
    f for f in FUSIONS if "features" in FUSIONS.entry(f).requires and f not in WITHOUT_ADAPTER
]


def make(adapter, fusion, rows=12, d=8, hidden=4):
    torch.manual_seed(0)
    features = torch.randn(rows, d)
    inputs = ItemInputs(
        features=features.numpy(),
        codes=torch.randint(0, 256, (rows, 2)).numpy(),
        id_table=torch.randn(rows, hidden).numpy(),
    )
    cfg = config.load(
        None,
        [
            f"adapt.adapter={adapter}",
            f"adapt.fusion={fusion}",
            "adapt.mlp_hidden=6",
            "adapt.moe_experts=3",
            "adapt.align_weight=0.5",
            "adapt.align_temperature=1.0",
            "adapt.adapter_dropout=0.0",
            f"model.hidden={hidden}",
        ],
    )
    return build_item_embedder(cfg, rows - 1, inputs), features


def test_every_fusion_but_id_reads_features():
    reading = [f for f in FUSIONS if "features" in FUSIONS.entry(f).requires]
    assert reading == [
        "add",
        "align",
        "alphafuse",
        "concat",
        "delta",
        "llmesr",
        "reconstruct",
        "replace",
        "semantic_init",
    ]


@pytest.mark.parametrize("fusion", FEATURE_FUSIONS)
@pytest.mark.parametrize("adapter", list(ADAPTERS))
def test_shapes_padding_and_gradients(adapter, fusion):
    emb, features = make(adapter, fusion)
    table = emb.all_items()
    assert table.shape == (12, 4) and not table[0].any()
    assert emb(torch.tensor([[0, 3], [5, 1]])).shape == (2, 2, 4)
    loss = table.pow(2).sum()
    extra = emb.extra_loss(torch.tensor([1, 2, 3]), table)
    assert (extra is not None) == (fusion == "align")
    if extra is not None:
        loss = loss + extra
    loss.backward()
    assert all(
        p.grad is not None
        for p in emb.adapter.parameters()
        if p.requires_grad and (adapter != "moe" or p is not emb.adapter.gate_noise.weight)
    )
    assert not emb.features.requires_grad and "features" not in emb.state_dict()
    assert torch.allclose(emb.features * (features[1:].var(0).mean().sqrt()), features)


def test_moe_gate_noise_only_in_training():
    torch.manual_seed(0)
    moe = MoEAdapter(6, 4, experts=4, noise=True)
    torch.nn.init.normal_(moe.gate_noise.weight)
    x = torch.randn(5, 6)
    moe.eval()
    assert torch.equal(moe(x), moe(x))
    moe.train()
    assert not torch.equal(moe(x), moe(x))


def test_moe_is_the_gated_sum_of_whitening_experts():
    torch.manual_seed(0)
    moe = MoEAdapter(6, 4, experts=3, noise=True).eval()
    for p in (moe.bias, moe.gate.weight):
        torch.nn.init.normal_(p)
    x = torch.randn(5, 6)
    gate = (x @ moe.gate.weight.T).softmax(-1)  # (5, 3)
    experts = [(x - moe.bias[k]) @ moe.weight[k] for k in range(3)]  # 3 x (5, 4)
    expected = sum(gate[:, k : k + 1] * experts[k] for k in range(3))
    torch.testing.assert_close(moe(x), expected)


def test_pca_fit_then_transform_equals_fit_transform():
    from sklearn.decomposition import PCA

    rng = np.random.default_rng(0)
    matrix = rng.normal(size=(40, 10)).astype(np.float32)
    rows = np.arange(1, 40)
    ours, explained = pca_transform(matrix, rows, 4, whiten=False)
    ref = PCA(n_components=4, svd_solver="full", random_state=0).fit_transform(matrix[1:])
    np.testing.assert_allclose(ours[1:], ref, rtol=1e-4, atol=1e-4)
    assert not ours[0].any() and 0 < explained < 1
    share, _ = pca_transform(matrix, rows, 0.5, whiten=False)
    assert 1 <= share.shape[1] < 10


def test_pca_by_shards_equals_pca_of_the_whole_matrix():
    from recxplore.adapt.reduce import pca_by_shards

    rng = np.random.default_rng(0)
    matrix = rng.normal(size=(50, 10)).astype(np.float32)
    matrix[0] = 0.0
    rows = np.sort(rng.choice(np.arange(1, 50), size=30, replace=False))
    order = rng.permutation(50)  # shards hold any rows, in any order

    def shards():
        return [(order[i : i + 7], matrix[order[i : i + 7]]) for i in range(0, 50, 7)]

    want, explained = pca_transform(matrix, rows, 4, whiten=True)
    got, got_explained = pca_by_shards(shards, rows, 4, whiten=True)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    assert got_explained == pytest.approx(explained) and not got[0].any()


def test_pca_value_is_validated():
    from recxplore.errors import ConfigError

    with pytest.raises(
        ConfigError,
        match=r"adapt.pca: must be a whole number >= 1, a share in "
        r"\(0, 1\), or null; got 2.5",
    ):
        AdaptConfig(pca=2.5)
