"""Semantic initialisation: the ID table starts as PCA of the features at the ID scale, trains
freely, and an item never in training keeps its initial row."""

import numpy as np
import torch
from torch import nn

from recxplore.adapt.fusions.semantic_init import SemanticInit, semantic_table
from recxplore.adapt.item_embedder import INIT_STD


def _features(n=12, d=10):
    rng = np.random.default_rng(0)
    return np.concatenate([np.zeros((1, d)), rng.normal(size=(n, d)) * 5 + 3]).astype(np.float32)


def test_the_table_is_pca_of_the_features_at_the_id_scale():
    features = _features()
    table = semantic_table(features, 4)
    assert table.shape == (13, 4) and np.all(table[0] == 0)
    assert abs(table[1:].std() - INIT_STD) < 1e-6
    # the same subspace as sklearn's PCA, up to sign and scale per component
    from sklearn.decomposition import PCA

    expected = PCA(4, svd_solver="full").fit_transform(features[1:])
    for c in range(4):
        corr = np.corrcoef(expected[:, c], table[1:, c])[0, 1]
        assert abs(abs(corr) - 1) < 1e-5
    assert semantic_table(features, 16).shape == (13, 16)  # more dims than features: zero-padded


def test_warm_rows_train_and_a_cold_row_keeps_its_text_init():
    table = torch.from_numpy(semantic_table(_features(), 4))
    seen = torch.ones(13, dtype=torch.bool)
    seen[0] = seen[5] = False
    model = SemanticInit(table, seen)
    opt = torch.optim.SGD(model.parameters(), lr=1.0)
    for _ in range(3):
        items = model.all_items()
        loss = nn.functional.cross_entropy(items[[1, 2]] @ items.T, torch.tensor([3, 4]))
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        after = model.all_items()
    torch.testing.assert_close(after[5], table[5])
    assert not torch.allclose(after[3], table[3])
