"""AlphaFuse: standardised language coordinates, frozen; the ID part lives in the last null_dim
coordinates only, trains, and is absent for an item never in training."""

import numpy as np
import pytest
import torch
from torch import nn

from recxplore.adapt.fusions.alphafuse import AlphaFuse, AlphaFuseConfig, language_coordinates
from recxplore.errors import ConfigError


def _features(n=30, d=12):
    rng = np.random.default_rng(0)
    scales = np.linspace(5, 0.5, d)
    return np.concatenate([np.zeros((1, d)), rng.normal(size=(n, d)) * scales]).astype(np.float32)


def test_standardised_coordinates_have_equal_variance_and_the_id_scale():
    coords = language_coordinates(_features(), 8, standardize=True)
    assert coords.shape == (31, 8) and np.all(coords[0] == 0)
    per_column = coords[1:].std(axis=0)
    np.testing.assert_allclose(per_column, per_column.mean(), rtol=1e-4)
    assert abs(coords[1:].std() - 0.02) < 1e-6
    raw = language_coordinates(_features(), 8, standardize=False)[1:].std(axis=0)
    assert raw[0] > 3 * raw[-1]  # without standardising, the leading directions dominate


def test_ids_train_in_the_null_coordinates_only_and_not_for_unseen_items():
    language = torch.from_numpy(language_coordinates(_features(), 8, standardize=True))
    seen = torch.ones(31, dtype=torch.bool)
    seen[0] = seen[7] = False
    fuse = AlphaFuse(language, AlphaFuseConfig(null_dim=3, id_init="normal"), seen)
    assert [n for n, p in fuse.named_parameters()] == ["ids.weight"]
    opt = torch.optim.SGD(fuse.parameters(), lr=1.0)
    for _ in range(3):
        items = fuse.all_items()
        loss = nn.functional.cross_entropy(items[[1, 2]] @ items.T, torch.tensor([3, 4]))
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        after = fuse.all_items()
    torch.testing.assert_close(after[:, :5], language[:, :5])  # the language part is frozen
    assert not torch.allclose(after[3, 5:], language[3, 5:])
    torch.testing.assert_close(after[7], language[7])  # unseen: language only
    assert torch.all(after[0] == 0)


def test_cover_replaces_the_null_coordinates_and_zeros_start_at_the_language():
    language = torch.from_numpy(language_coordinates(_features(), 8, standardize=True))
    covered = AlphaFuse(language, AlphaFuseConfig(null_dim=3, cover=True)).all_items()
    assert torch.all(covered[:, 5:] == 0)  # zero-initialised IDs fill what the language left
    added = AlphaFuse(language, AlphaFuseConfig(null_dim=3)).all_items()
    torch.testing.assert_close(added, language)
    with pytest.raises(ConfigError, match="alphafuse_null_dim=9"):
        AlphaFuse(language, AlphaFuseConfig(null_dim=9))
