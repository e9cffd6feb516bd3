"""SAID: an item vector from which the LLM generates the item's text. The loss trains the item
table, its projector and the LoRA weights and nothing else; the store is the learned vectors;
a resumed stage ends where an uninterrupted one does; said comes last and needs a decoder."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from safetensors.numpy import load_file
from tests.tune.test_tune import examples, fix_examples, store_path, train_whole_and_interrupted

from recxplore import config
from recxplore.cache import home_dir
from recxplore.data.prepare import prepare
from recxplore.errors import ConfigError
from recxplore.extract.store import open_store
from recxplore.llm import models
from recxplore.llm.lora import ITEMS_FILE, TuneError
from recxplore.pipeline import tune
from recxplore.registry import OBJECTIVES
from recxplore.tune import stage


def test_the_loss_trains_the_items_projector_and_lora_only(tune_cfg, tmp_path):
    ds, _ = prepare(tune_cfg.data, home_dir(tune_cfg.paths.home))
    source, identity = models.resolve(tune_cfg.extract.model, tmp_path)
    st = stage._setup_stage("said", tune_cfg, ds, source, identity, [])
    batch = examples("said", ds, tune_cfg)[:4]
    loss = OBJECTIVES["said"].loss(st.tm, batch, np.random.default_rng(0), st.device, None)
    loss.backward()
    with_grad = {n for n, p in st.tm.lm.named_parameters() if p.grad is not None}
    assert "said_items.table.weight" in with_grad
    assert any("said_items.projector" in n for n in with_grad)
    assert any("lora_" in n for n in with_grad)
    # (the tiny model's checkpoint has no LM head, so the stage trains it as it would any head
    # a checkpoint lacks)
    assert all("lora_" in n or n.startswith(("said_items", "lm_head")) for n in with_grad)
    rows = st.tm.lm.said_items.table.weight.grad.abs().sum(1)
    assert set(torch.nonzero(rows).flatten().tolist()) == {i for i, _ in batch}  # the batch's items


def test_the_items_learn_their_texts_and_the_store_holds_them(
    tune_cfg,
    tmp_path,
    monkeypatch,
):
    cfg = tune_cfg.replace(
        **{"tune.steps": 25, "tune.lr": 2e-2, "tune.lora_dropout": 0.0, "tune.stages": ["said"]}
    )
    ds, _ = prepare(cfg.data, home_dir(cfg.paths.home))
    fix_examples(monkeypatch, "said", examples("said", ds, cfg)[:4])
    chain = tune(cfg, progress=False)
    curve = np.loadtxt(chain.folders[-1] / "loss.csv", delimiter=",", skiprows=1)[:, 1]
    assert curve[-5:].mean() < 0.8 * curve[:3].mean(), curve
    learned = load_file(str(chain.folders[-1] / ITEMS_FILE))["embeddings"]
    assert learned.shape[0] == ds.n_items + 1 and np.all(learned[0] == 0)
    stored = open_store(store_path(cfg), ds).embeddings
    np.testing.assert_array_equal(stored, learned)


def test_an_interrupted_said_stage_resumes_to_the_same_items(tune_cfg, tmp_path, monkeypatch):
    train_whole_and_interrupted("said", tune_cfg, tmp_path, monkeypatch)
    a = load_file(str(tmp_path / "whole" / ITEMS_FILE))["embeddings"]
    b = load_file(str(tmp_path / "cut" / ITEMS_FILE))["embeddings"]
    np.testing.assert_allclose(a, b, atol=1e-6)


def test_said_comes_last_and_needs_a_decoder(tune_cfg, tiny_bert, tmp_path):
    with pytest.raises(ConfigError, match="said learns the item vectors themselves"):
        config.load(None, ["tune.stages=[said,cpt]"])
    cfg = tune_cfg.replace(**{"extract.model": str(tiny_bert), "tune.stages": ["said"]})
    with pytest.raises(TuneError, match="said trains a causal language model"):
        tune(cfg, progress=False)
