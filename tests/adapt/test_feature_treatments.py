"""Feature treatments: centring without PCA and a learned output gain."""

import numpy as np
import torch
from tests.adapt.test_feature_training import feature_cfg  # noqa: F401 -- the fixture

from recxplore.adapt.gain import LearnedGain
from recxplore.adapt.inputs import ItemInputs
from recxplore.adapt.reduce import centred, reduced_features
from recxplore.config import AdaptConfig
from recxplore.pipeline import features, item_inputs, train
from recxplore.train.run import build_model


def test_centring_without_pca_subtracts_the_fitted_items_mean():
    rng = np.random.default_rng(0)
    matrix = np.vstack([np.zeros((1, 4)), rng.normal(3.0, 1.0, (10, 4))]).astype(np.float32)
    rows = np.arange(1, 8)  # fitted on items 1..7 only
    out = centred(matrix, rows)
    np.testing.assert_allclose(out[rows].mean(0), 0.0, atol=1e-5)
    np.testing.assert_allclose(out[8:], matrix[8:] - matrix[rows].mean(0), atol=1e-5)
    assert not out[0].any()


def test_centring_is_a_setting_with_its_own_key(feature_cfg, tmp_path):  # noqa: F811
    cfg = feature_cfg.replace(**{"adapt.pca": None, "adapt.fusion": "replace"})
    ds, dataset_key, _, _ = features(cfg, progress=False)
    raw = item_inputs(cfg, ds, dataset_key, progress=False)
    done = item_inputs(cfg.replace(**{"adapt.center": True}), ds, dataset_key, progress=False)
    assert raw.keys != done.keys
    np.testing.assert_allclose(done.features[1:].mean(0), 0.0, atol=1e-4)
    shift = done.features[1:] - raw.features[1:]
    np.testing.assert_allclose(shift, np.broadcast_to(shift[0], shift.shape), atol=1e-5)
    # with PCA the features are centred already: the setting changes nothing
    store = lambda: raw.features  # noqa: E731
    shards = lambda: [(np.arange(len(raw.features)), raw.features)]  # noqa: E731
    with_pca = AdaptConfig(pca=8)
    plain, _ = reduced_features(store, shards, "s", ds, dataset_key, with_pca, tmp_path)
    both, _ = reduced_features(
        store, shards, "s", ds, dataset_key, AdaptConfig(pca=8, center=True), tmp_path / "b"
    )
    np.testing.assert_allclose(plain, both, atol=1e-6)


def test_a_learned_gain_starts_at_the_fixed_one_and_trains(feature_cfg):  # noqa: F811
    cfg = feature_cfg.replace(**{"adapt.fusion": "replace", "adapt.adapter": "linear"})
    ds, dataset_key, _, _ = features(cfg, progress=False)
    inputs: ItemInputs = item_inputs(cfg, ds, dataset_key, progress=False)
    fixed = build_model(cfg, ds, inputs)
    learned = build_model(cfg.replace(**{"adapt.gain": "learned"}), ds, inputs)
    assert isinstance(learned.items.adapter, LearnedGain)
    fixed.eval(), learned.eval()
    with torch.no_grad():
        torch.testing.assert_close(learned.items.all_items(), fixed.items.all_items())
    learned.train()
    learned.items.all_items().pow(2).sum().backward()
    assert learned.items.adapter.log_gain.grad is not None
    assert float(learned.items.adapter.log_gain.grad.abs()) > 0
    results = train(cfg.replace(**{"adapt.gain": "learned"}), progress=False)
    assert results["run_dir"] != train(cfg, progress=False)["run_dir"]


def test_align_logs_its_loss_and_gradient_share_and_reaches_the_adapter(feature_cfg):  # noqa: F811
    import csv

    cfg = feature_cfg.replace(
        **{"adapt.fusion": "align", "adapt.adapter": "linear", "train.epochs": 2}
    )
    results = train(cfg, progress=False)
    with open(f"{results['run_dir']}/metrics.csv") as f:
        rows = list(csv.DictReader(f))
    assert all(float(r["extra_loss"]) > 0 and float(r["extra_grad_ratio"]) > 0 for r in rows)
    ds, dataset_key, _, _ = features(cfg, progress=False)
    model = build_model(cfg, ds, item_inputs(cfg, ds, dataset_key, progress=False))
    model.train()
    targets = torch.arange(1, 40)
    loss = model.items.extra_loss(targets, model.items.all_items())
    loss.backward()
    grads = [p.grad for p in model.items.adapter.parameters()]
    assert all(g is not None and g.abs().sum() > 0 for g in grads)  # it trains the adapter
    assert not model.items.id_table.requires_grad  # and never the ID table it aligns to


def test_pca_fits_on_a_bounded_sample_when_asked(tiny_cfg):
    from recxplore.adapt.reduce import fit_rows, pca_settings
    from recxplore.cache import home_dir
    from recxplore.data.prepare import prepare

    ds, _ = prepare(tiny_cfg.data, home_dir(tiny_cfg.paths.home))
    every = fit_rows(ds, "all")
    sample = fit_rows(ds, "all", sample=10)
    assert len(sample) == 10 and set(sample) <= set(every)
    assert list(sample) == list(fit_rows(ds, "all", sample=10))  # seeded
    assert list(fit_rows(ds, "all", sample=10_000)) == list(every)
    sampled = tiny_cfg.replace(**{"adapt.pca_sample": 10}).adapt
    assert pca_settings(sampled)["sample"] == 10 and "sample" not in pca_settings(tiny_cfg.adapt)
