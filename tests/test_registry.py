"""Every registered component, table by table, runs through a tiny end-to-end case: a new
adapter, fusion, backbone, pooling, loss or tuning objective is tested by being registered."""

from __future__ import annotations

import dataclasses
import math

import pytest
from tests.conftest import assert_metrics_match_ranks

from recxplore import config
from recxplore.pipeline import train
from recxplore.registry import ADAPTERS, BACKBONES, FUSIONS, LOSSES, OBJECTIVES, POOLINGS, Registry

# What each table's entry changes in a small feature run (the base below).
CASES: dict[str, tuple[Registry, str]] = {
    "adapter": (ADAPTERS, "adapt.adapter={}"),
    "fusion": (FUSIONS, "adapt.fusion={}"),
    "backbone": (BACKBONES, "model.backbone={}"),
    "loss": (LOSSES, "train.loss={}"),
    "pooling": (POOLINGS, "extract.pooling={}"),
    "objective": (OBJECTIVES, "tune.stages=[{}]"),
}
NEURAL = ("pooling", "objective")  # these need a transformers extractor
EMBEDS_USERS = {("fusion", "llmesr")}  # and so does what embeds users' histories


def every_entry():
    return [
        pytest.param(kind, name, id=f"{kind}:{name}")
        for kind, (table, _) in CASES.items()
        for name in table
    ]


@pytest.fixture(scope="module")
def big(tmp_path_factory):
    """300 items (PQ needs 256 codes' worth)."""
    from tests.conftest import write_tiny_atomic

    return write_tiny_atomic(
        tmp_path_factory.mktemp("raw") / "big", name="big", users=80, items=300, seed=3
    )


@pytest.mark.smoke
@pytest.mark.parametrize("kind,name", every_entry())
def test_every_registered_component_runs_end_to_end(kind, name, big, tiny_llama, tmp_path):
    table, override = CASES[kind]
    neural = kind in NEURAL or (kind, name) in EMBEDS_USERS
    extractor = str(tiny_llama) if neural else "tfidf-svd"
    cfg = config.load(
        None,
        [
            "data.name=atomic:big",
            f"data.data_dir={big}",
            "data.filter=none",
            f"extract.model={extractor}",
            "extract.static_dim=32",
            "adapt.pca=16",
            "adapt.pq_subvectors=4",
            "adapt.fusion=replace",
            "adapt.adapter=linear",
            "model.hidden=16",
            "model.layers=1",
            "model.heads=2",
            "model.max_len=8",
            "train.epochs=1",
            "train.batch_size=64",
            "eval.sampled_negatives=20",
            "tune.steps=2",
            "tune.batch_size=4",
            "tune.save_every=2",
            f"paths.home={tmp_path}",
            override.format(name),
        ],
    )
    results = train(cfg, progress=False)
    section, _, key = override.partition("=")[0].partition(".")
    assert name in str(results["config"][section][key])
    test = results["metrics"]["test"]
    assert set(test) == {"full", "sampled"}
    for protocol in test.values():
        assert all(0.0 <= v <= 1.0 and math.isfinite(v) for v in protocol.values())
        assert (
            protocol["HR@10"] >= protocol["NDCG@10"]
        )  # a hit at rank r counts 1 in HR, <= 1 in NDCG
    assert results["timing"]["epochs"] == 1
    assert_metrics_match_ranks(results)


@pytest.mark.parametrize("kind,name", every_entry())
def test_every_component_is_documented_and_its_settings_are_keys(kind, name):
    table, override = CASES[kind]
    entry = table.entry(name)
    assert entry.help, f"{kind} {name}: register it with help=..."
    section = override.partition(".")[0]
    described = config.describe()
    assert f"    {name}: {entry.help}" in described
    for f in dataclasses.fields(entry.config) if entry.config else ():
        assert f.metadata.get("help"), f"{kind} {name}: setting {f.name} has no help"
        key = f"{name}_{f.name}"
        assert f"  {key} (" in described
        loaded = config.load(None, [f"{section}.{key}={_yaml(getattr(entry.config(), f.name))}"])
        assert getattr(getattr(loaded, section).options(name), f.name) == getattr(
            entry.config(), f.name
        )


def _yaml(value):
    import yaml

    return yaml.safe_dump(value, default_flow_style=True).strip().removesuffix("...").strip()


def test_an_unknown_component_lists_the_registered_ones():
    with pytest.raises(
        config.ConfigError,
        match=r"adapt.adapter: unknown adapter; valid names "
        r"are linear, mlp, moe, pq; got 'lstm'",
    ):
        config.load(None, ["adapt.adapter=lstm"])
    with pytest.raises(config.ConfigError, match=r"adapt.moe_expertz: unknown key"):
        config.load(None, ["adapt.moe_expertz=3"])
    with pytest.raises(config.ConfigError, match=r"adapt.moe_experts: must be >= 1; got 0"):
        config.load(None, ["adapt.moe_experts=0"])
