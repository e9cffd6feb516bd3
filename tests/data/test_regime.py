"""Regimes: thinning keeps what it says, the cold-start split keeps cold items out of training,
both are cached like any prepared dataset and refused when they leave nothing to train on."""

from pathlib import Path

import numpy as np
import pytest

from recxplore import config
from recxplore.data.prepare import prepare
from recxplore.data.split import eval_set, seen_items, train_sequences
from recxplore.errors import ConfigError, DataError


def _prepare(cfg, **settings):
    cfg = cfg.replace(**{f"data.{k}": v for k, v in settings.items()})
    return prepare(cfg.data, Path(cfg.paths.home))


def test_the_history_cap_keeps_each_users_most_recent_interactions(tiny_cfg):
    full, _ = _prepare(tiny_cfg)
    capped, _ = _prepare(tiny_cfg, max_history=4)
    assert capped.item_ids == full.item_ids  # the catalogue stays whole
    assert capped.item_fingerprint == full.item_fingerprint
    assert set(capped.lengths()) == {4}
    for u, user in enumerate(capped.user_ids):
        end = full.offsets[full.user_ids.index(user) + 1]
        np.testing.assert_array_equal(capped.sequence(u), full.items[end - 4 : end])
        np.testing.assert_array_equal(
            capped.timestamps[capped.offsets[u] : capped.offsets[u + 1]],
            full.timestamps[end - 4 : end],
        )


def test_subsampling_is_seeded_and_keeps_order(tiny_cfg):
    full, _ = _prepare(tiny_cfg)
    a, _ = _prepare(tiny_cfg, user_share=0.5, interaction_share=0.6)
    b, _ = _prepare(tiny_cfg, user_share=0.5, interaction_share=0.6)
    c, _ = _prepare(tiny_cfg, user_share=0.5, interaction_share=0.6, sample_seed=1)
    assert a.user_ids == b.user_ids and np.array_equal(a.items, b.items)
    assert a.user_ids != c.user_ids or not np.array_equal(a.items, c.items)
    assert len(a.user_ids) <= round(0.5 * full.n_users)
    for u, user in enumerate(a.user_ids):
        stamps = a.timestamps[a.offsets[u] : a.offsets[u + 1]]
        assert np.all(np.diff(stamps) >= 0)  # still chronological
        whole = set(full.sequence(full.user_ids.index(user)).tolist())
        assert set(a.sequence(u).tolist()) <= whole


def test_no_cold_item_occurs_in_training_or_a_validation_input(tiny_cfg):
    ds, _ = _prepare(tiny_cfg, cold_share=0.2)
    assert ds.cold is not None and ds.cold.sum() == round(0.2 * ds.n_items)
    # the cold items are the newest by first interaction
    first = np.full(ds.n_items + 1, np.inf)
    np.minimum.at(first, ds.items, ds.timestamps)
    assert first[ds.cold].min() >= first[1:][~ds.cold[1:]].max()
    for seq in train_sequences(ds):
        assert not ds.cold[seq].any()
    valid, test = eval_set(ds, "valid"), eval_set(ds, "test")
    for history in valid.inputs:
        assert not ds.cold[history].any()
    assert ds.cold[valid.targets].any() and ds.cold[test.targets].any()
    assert not seen_items(ds)[ds.cold].any()
    # a test input is the validation input and the validation target
    for v, t in zip(valid.inputs, test.inputs):
        np.testing.assert_array_equal(t[:-1], v)


def test_regimes_are_cached_and_share_the_catalogue_key(tiny_cfg):
    base, base_art = _prepare(tiny_cfg)
    ds, art = _prepare(tiny_cfg, cold_share=0.2)
    again, art_again = _prepare(tiny_cfg, cold_share=0.2)
    assert art.key != base_art.key and art_again.key == art.key and art.done
    assert ds.catalogue_key == again.catalogue_key == base.catalogue_key == base_art.key
    np.testing.assert_array_equal(again.cold, ds.cold)  # read back from the cache


def test_a_history_cap_below_three_is_refused():
    with pytest.raises(ConfigError, match="data.max_history=2"):
        config.load(None, ["data.max_history=2"])


def test_a_cold_share_of_one_is_refused():
    with pytest.raises(ConfigError, match="data.cold_share"):
        config.load(None, ["data.cold_share=1.0"])


def test_a_cold_share_that_leaves_no_training_data_is_refused(tiny_cfg):
    with pytest.raises(DataError, match="data.cold_share=0.99"):
        _prepare(tiny_cfg, cold_share=0.99)


def test_cold_items_are_outside_the_training_loss(tiny_cfg):
    """An ID-only model never trains a cold item's row (it is neither a target nor a negative):
    its row at the best epoch is its row at initialisation."""
    import torch

    from recxplore.pipeline import train
    from recxplore.train.run import build_model

    cfg = tiny_cfg.replace(**{"data.cold_share": 0.2, "train.epochs": 2})
    ds, _ = _prepare(tiny_cfg, cold_share=0.2)
    results = train(cfg, progress=False)
    trained = torch.load(Path(results["run_dir"]) / "best.pt")["items.table.weight"]
    initial = build_model(cfg, ds).items.table.weight.detach()
    cold = torch.from_numpy(ds.cold)
    torch.testing.assert_close(trained[cold], initial[cold])
    assert not torch.allclose(trained[~cold][1:], initial[~cold][1:])
