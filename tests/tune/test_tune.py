"""LoRA tuning stages on a tiny randomly initialised LLaMA and the tiny atomic dataset."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from recxplore import config
from recxplore.cache import home_dir
from recxplore.data.prepare import prepare
from recxplore.data.split import eval_set
from recxplore.extract import models
from recxplore.extract.encode import encode, tokenize
from recxplore.extract.stage import extract_features
from recxplore.extract.store import open_store
from recxplore.tune import data, stage
from recxplore.tune.lora import TuneError, apply_adapters


@pytest.fixture
def tune_cfg(tiny_cfg, tiny_llama):
    return tiny_cfg.replace(**{"extract.model": str(tiny_llama), "tune.steps": 4,
                               "tune.batch_size": 4, "tune.lr": 1e-2, "tune.warmup_steps": 0,
                               "tune.schedule": "constant", "tune.save_every": 2,
                               "extract.batch_size": 8})


@pytest.mark.parametrize("name", ["cpt", "sft", "scft"])
def test_each_objective_lowers_its_loss_on_a_fixed_batch(tune_cfg, tmp_path, name):
    """Many steps on one repeated batch: the objective must be learnable through LoRA alone."""
    cfg = tune_cfg.replace(**{"tune.steps": 25, "tune.batch_size": 4, "tune.lr": 2e-2,
                              "tune.lora_dropout": 0.0, "tune.scft_drop": 0.0})
    ds, _ = prepare(cfg.data, home_dir(cfg.paths.home))
    fixed = stage.EXAMPLES[name](ds, cfg)[:4]
    original = stage.EXAMPLES[name]
    stage.EXAMPLES[name] = lambda ds, cfg: fixed
    try:
        source, identity = models.resolve(cfg.extract.model, tmp_path)
        out = stage.train_stage(name, cfg, ds, source, identity, [], tmp_path / name,
                                progress=False)
    finally:
        stage.EXAMPLES[name] = original
    curve = np.loadtxt(tmp_path / name / "loss.csv", delimiter=",", skiprows=1)[:, 1]
    assert curve[-5:].mean() < 0.8 * curve[:3].mean(), (name, curve)
    assert (tmp_path / name / "adapter_model.safetensors").is_file()
    assert (tmp_path / name / "loss.png").is_file()
    assert out["steps"] == 25


def test_encoder_cpt_is_masked_lm_and_sft_is_refused(tune_cfg, tiny_bert, tmp_path):
    cfg = tune_cfg.replace(**{"extract.model": str(tiny_bert), "tune.steps": 25,
                              "tune.lr": 2e-2, "tune.lora_dropout": 0.0,
                              "tune.cpt_mlm_prob": 0.5})
    ds, _ = prepare(cfg.data, home_dir(cfg.paths.home))
    source, identity = models.resolve(cfg.extract.model, tmp_path)
    fixed = data.cpt_examples(ds, cfg)[:4]
    original = stage.EXAMPLES["cpt"]
    stage.EXAMPLES["cpt"] = lambda ds, cfg: fixed
    try:
        out = stage.train_stage("cpt", cfg, ds, source, identity, [], tmp_path / "mlm", False)
    finally:
        stage.EXAMPLES["cpt"] = original
    assert out["targets"] == ["dense", "key", "query", "value"]
    curve = np.loadtxt(tmp_path / "mlm" / "loss.csv", delimiter=",", skiprows=1)[:, 1]
    assert curve[-5:].mean() < 0.9 * curve[:3].mean(), curve  # masks differ step to step
    with pytest.raises(TuneError, match="sft trains a causal language model"):
        stage.train_stage("sft", cfg, ds, source, identity, [], tmp_path / "sft", False)
    # the adapter, trained inside BertForMaskedLM, applies to the plain encoder extraction loads
    (tmp_path / "mlm" / "manifest.json").write_text(json.dumps({"base_model": identity}))
    loaded = models.load(cfg.extract.model, models_dir=tmp_path)
    apply_adapters(loaded.model, [tmp_path / "mlm"], identity, merge=True)


def test_sft_data_holds_no_validation_or_test_item(tiny_dir, home, make_atomic):
    """Items that occur only as someone's validation or test target never appear in SFT text."""
    folder = tiny_dir.parent / "sft"
    make_atomic(folder, name="sft")
    inter = (folder / "sft.inter").read_text().splitlines()
    # give every user two held-out items no one else has: ids h<u>a (valid), h<u>b (test)
    users = sorted({line.split("\t")[0] for line in inter[1:]})
    inter += [f"{u}\th{u}{s}\t5\t{10**6 + k}" for u in users for k, s in enumerate("ab")]
    (folder / "sft.inter").write_text("\n".join(inter) + "\n")
    items = (folder / "sft.item").read_text().splitlines()
    items += [f"h{u}{s}\tHeldout{u}{s}\tsecret" for u in users for s in "ab"]
    (folder / "sft.item").write_text("\n".join(items) + "\n")
    cfg = config.load(None, ["data.name=atomic:sft", f"data.data_dir={folder}",
                             "data.filter=none", f"paths.home={home}", "tune.sft_per_user=50"])
    ds, _ = prepare(cfg.data, home)
    held = {int(t) for part in ("valid", "test") for t in eval_set(ds, part).targets}
    assert {ds.item_ids[i - 1][0] for i in held} == {"h"}  # the fixture did what it meant to
    pairs = data.sft_examples(ds, cfg)
    assert len(pairs) > len(users)  # both tasks contributed
    text = "\n".join(p + a for p, a in pairs)
    assert "Heldout" not in text and "secret" not in text
    assert any("Which" in p for p, _ in pairs) and any("genres" in p for p, _ in pairs)


def test_interrupted_stage_resumes_to_the_same_adapter(tune_cfg, tmp_path, monkeypatch):
    source, identity = models.resolve(tune_cfg.extract.model, tmp_path)
    ds, _ = prepare(tune_cfg.data, home_dir(tune_cfg.paths.home))
    stage.train_stage("cpt", tune_cfg, ds, source, identity, [], tmp_path / "whole", False)

    real_save = stage.save_atomic

    def save_then_die(obj, path):
        real_save(obj, path)
        raise KeyboardInterrupt

    monkeypatch.setattr(stage, "save_atomic", save_then_die)
    with pytest.raises(KeyboardInterrupt):
        stage.train_stage("cpt", tune_cfg, ds, source, identity, [], tmp_path / "cut", False)
    monkeypatch.setattr(stage, "save_atomic", real_save)
    assert (tmp_path / "cut" / "checkpoint.pt").is_file()
    stage.train_stage("cpt", tune_cfg, ds, source, identity, [], tmp_path / "cut", False)

    from safetensors.torch import load_file

    a = load_file(tmp_path / "whole" / "adapter_model.safetensors")
    b = load_file(tmp_path / "cut" / "adapter_model.safetensors")
    assert a.keys() == b.keys() and a
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=1e-6)
    assert not (tmp_path / "cut" / "checkpoint.pt").exists()


def test_chain_caches_stages_and_merged_equals_unmerged(tune_cfg, tmp_path):
    cfg = tune_cfg.replace(**{"tune.stages": ["cpt", "sft"]})
    folders, keys, trained = stage.tune_chain(cfg, progress=False)
    assert [t["stage"] for t in trained] == ["cpt", "sft"]
    again, keys_again, trained_again = stage.tune_chain(cfg, progress=False)
    assert keys_again == keys and trained_again == []  # both reused from the cache
    only_cpt, cpt_keys, trained_cpt = stage.tune_chain(
        cfg.replace(**{"tune.stages": ["cpt"]}), progress=False)
    assert cpt_keys == keys[:1] and trained_cpt == []
    manifest = json.loads((folders[1] / "manifest.json").read_text())
    assert manifest["stages"] == [folders[0].name, "sft"]

    _, identity = models.resolve(cfg.extract.model, tmp_path)
    ds, _ = prepare(cfg.data, home_dir(cfg.paths.home))
    texts = [f"Item number {i} genre{i % 3}" for i in range(1, 9)]
    embeddings = {}
    for merge in (True, False):
        loaded = models.load(cfg.extract.model, models_dir=tmp_path)
        frozen = encode(loaded, tokenize(loaded, texts, pooling="mean", eol_template="{text}"),
                        pooling="mean", layer=-1, batch_size=4, padding_side="right",
                        device=torch.device("cpu"))
        loaded.model = apply_adapters(loaded.model, folders, identity, merge=merge)
        embeddings[merge] = encode(loaded, tokenize(loaded, texts, pooling="mean",
                                                    eol_template="{text}"),
                                   pooling="mean", layer=-1, batch_size=4,
                                   padding_side="right", device=torch.device("cpu"))
    np.testing.assert_allclose(embeddings[True], embeddings[False], atol=1e-5)
    assert np.abs(embeddings[True] - frozen).max() > 1e-4  # the adapters changed something


def test_extract_uses_the_tuned_adapters(tune_cfg):
    frozen_path, _ = extract_features(tune_cfg, progress=False)
    tuned_cfg = tune_cfg.replace(**{"tune.stages": ["scft"]})
    tuned_path, _ = extract_features(tuned_cfg, progress=False)
    assert tuned_path != frozen_path
    ds, _ = prepare(tune_cfg.data, home_dir(tune_cfg.paths.home))
    frozen = open_store(frozen_path, ds).embeddings
    tuned = open_store(tuned_path, ds).embeddings
    assert frozen.shape == tuned.shape and not np.allclose(frozen, tuned)
    manifest = json.loads((tuned_path / "manifest.json").read_text())
    assert len(manifest["model_identity"]["adapters"]) == 1
    unmerged, _ = extract_features(tuned_cfg.replace(**{"tune.merge": False}), progress=False)
    assert unmerged == tuned_path  # merging is how, not what: the same store


def test_bad_input_is_refused_before_training(tune_cfg, tmp_path, tiny_dir):
    with pytest.raises(TuneError, match=r"tune.target_modules: \['nope'\] not in the model"):
        stage.tune_chain(tune_cfg.replace(**{"tune.stages": ["cpt"],
                                             "tune.target_modules": ["nope"]}), progress=False)
    with pytest.raises(config.ConfigError, match="tune.steps: must be >= 1"):
        tune_cfg.replace(**{"tune.steps": 0})
    with pytest.raises(TuneError, match="no sft examples"):
        stage.tune_chain(tune_cfg.replace(**{"tune.stages": ["sft"], "text.attributes": ["x"]}),
                         progress=False)
    folders, _, _ = stage.tune_chain(tune_cfg.replace(**{"tune.stages": ["cpt"]}),
                                     progress=False)
    from tests.conftest import TINY_CORPUS, build_tiny_llama

    other = build_tiny_llama(tmp_path / "other", TINY_CORPUS, seed=1)
    with pytest.raises(TuneError, match="was trained on base model"):
        extract_features(tune_cfg.replace(**{"extract.model": str(other),
                                             "tune.adapter": str(folders[0])}), progress=False)
    with pytest.raises(TuneError, match="not an adapter saved by `recxplore tune`"):
        stage.tune_chain(tune_cfg.replace(**{"tune.adapter": str(tiny_dir)}), progress=False)


def test_static_extractor_cannot_be_tuned():
    with pytest.raises(config.ConfigError, match="is not a neural network and cannot be tuned"):
        config.load(None, ["extract.model=tfidf-svd", "tune.stages=[cpt]"])
