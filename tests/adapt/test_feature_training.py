"""Every adapter x fusion trains end to end with every backbone on a tiny dataset."""

from pathlib import Path

import pytest
from tests.conftest import assert_metrics_match_ranks

from recxplore.adapt.fusions import WITHOUT_ADAPTER
from recxplore.errors import ArtifactError
from recxplore.pipeline import train
from recxplore.registry import ADAPTERS, BACKBONES
from recxplore.registry import FUSIONS as REGISTERED_FUSIONS

FUSIONS = [f for f in REGISTERED_FUSIONS if "features" in REGISTERED_FUSIONS.entry(f).requires]


@pytest.fixture
def feature_cfg(tmp_path, make_atomic, home):
    """300 items (PQ needs 256 codes' worth), TF-IDF features: fast and offline."""
    from recxplore import config

    raw = make_atomic(tmp_path / "big", name="big", users=120, items=300, seed=3)
    return config.load(
        None,
        [
            "data.name=atomic:big",
            f"data.data_dir={raw}",
            "data.filter=none",
            "extract.model=tfidf-svd",
            "extract.static_dim=32",
            "adapt.pca=16",
            "adapt.pq_subvectors=4",
            "model.hidden=16",
            "model.layers=1",
            "model.heads=2",
            "model.max_len=8",
            "train.epochs=1",
            "train.batch_size=64",
            "eval.sampled_negatives=20",
            f"paths.home={home}",
        ],
    )


# every adapter with every fusion that uses one; a fusion without one with one adapter setting
COMBINATIONS = [
    (adapter, fusion)
    for fusion in FUSIONS
    for adapter in ADAPTERS
    if fusion not in WITHOUT_ADAPTER or adapter == "linear"
]


@pytest.mark.smoke
@pytest.mark.parametrize("backbone", list(BACKBONES))
@pytest.mark.parametrize("adapter,fusion", COMBINATIONS)
def test_adapter_fusion_backbone(feature_cfg, adapter, fusion, backbone):
    settings = {"adapt.adapter": adapter, "adapt.fusion": fusion, "model.backbone": backbone}
    if fusion == "llmesr":  # the static extractor cannot embed users (the registry test can)
        settings["adapt.llmesr_distill_weight"] = 0.0
    cfg = feature_cfg.replace(**settings)
    results = train(cfg, progress=False)
    assert 0 <= results["metrics"]["test"]["full"]["NDCG@10"] <= 1
    assert_metrics_match_ranks(results)
    named = f"-{fusion}-ce-" if fusion in WITHOUT_ADAPTER else f"-{fusion}-{adapter}-"
    assert named in Path(results["run_dir"]).name


def test_reduced_features_and_codes_are_cached(feature_cfg):
    cfg = feature_cfg.replace(**{"adapt.adapter": "pq", "adapt.fusion": "replace"})
    train(cfg, progress=False)
    cache = Path(cfg.paths.home) / "cache"
    reduced = list((cache / "reduced").glob("*/manifest.json"))
    codes = list((cache / "pq-codes").glob("*/manifest.json"))
    assert len(reduced) == 1 and len(codes) == 1
    stamps = [p.stat().st_mtime_ns for p in reduced + codes]
    for shard in (cache / "embeddings").glob("*/shard-*"):
        shard.unlink()  # cached PCA features never read the store again
    train(cfg.replace(**{"train.seed": 7}), progress=False)
    assert [p.stat().st_mtime_ns for p in reduced + codes] == stamps
    with pytest.raises(ArtifactError, match="missing or altered"):  # without PCA it reads the store
        train(cfg.replace(**{"adapt.pca": None}), progress=False)


def test_align_pretrains_the_id_table_once(feature_cfg):
    cfg = feature_cfg.replace(**{"adapt.adapter": "linear", "adapt.fusion": "align"})
    train(cfg, progress=False)
    runs = Path(cfg.paths.home) / "runs"
    id_runs = [p for p in runs.iterdir() if "-id-" in p.name]
    assert len(id_runs) == 1
    train(cfg.replace(**{"adapt.align_weight": 0.5}), progress=False)
    assert [p for p in runs.iterdir() if "-id-" in p.name] == id_runs


def test_pq_needs_enough_items(tiny_cfg):
    from recxplore.errors import ConfigError

    cfg = tiny_cfg.replace(
        **{
            "adapt.adapter": "pq",
            "adapt.fusion": "replace",
            "extract.model": "tfidf-svd",
            "extract.static_dim": 8,
            "adapt.pca": None,
            "adapt.pq_subvectors": 4,
        }
    )
    with pytest.raises(ConfigError, match="pq needs at least 256 items"):
        train(cfg, progress=False)


def test_features_equal_for_every_item_are_reported(feature_cfg, caplog):
    import numpy as np

    from recxplore.pipeline import _warn_if_constant

    first = feature_cfg.replace(**{"extract.pooling": "first"})
    same = np.zeros((6, 4), dtype=np.float32)
    same[1:] = [0.3, -1.0, 2.0, 0.5]  # row 0 is padding
    _warn_if_constant(same, first)
    assert "are the same for all 5 items" in caplog.text and "first token" in caplog.text
    caplog.clear()
    _warn_if_constant(same + np.arange(6, dtype=np.float32)[:, None], first)
    assert caplog.text == ""
