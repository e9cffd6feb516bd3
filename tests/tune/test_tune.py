"""LoRA tuning stages on a tiny randomly initialised LLaMA and the tiny atomic dataset."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch

from recxplore import config
from recxplore.cache import home_dir
from recxplore.data.prepare import prepare
from recxplore.data.split import eval_set
from recxplore.extract.encode import encode, tokenize
from recxplore.extract.store import open_store
from recxplore.llm import models
from recxplore.llm.lora import TuneError, apply_adapters
from recxplore.pipeline import features, tune
from recxplore.registry import OBJECTIVES
from recxplore.tune import stage
from recxplore.tune.objectives.sft import sft_examples


def examples(name, ds, cfg):
    return OBJECTIVES[name].examples(ds, cfg, cfg.tune.options(name))


def fix_examples(monkeypatch, name, fixed):
    """Make objective ``name`` learn from ``fixed`` only (a repeated batch)."""
    entry = OBJECTIVES.entry(name)
    objective = dataclasses.replace(entry.build, examples=lambda ds, cfg, settings: fixed)
    monkeypatch.setitem(OBJECTIVES._entries, name, dataclasses.replace(entry, build=objective))


def store_path(cfg):
    return features(cfg, progress=False)[3].path


@pytest.mark.parametrize("name", ["cpt", "sft", "scft"])
def test_each_objective_lowers_its_loss_on_a_fixed_batch(tune_cfg, tmp_path, name, monkeypatch):
    """Many steps on one repeated batch: the objective must be learnable through LoRA alone."""
    cfg = tune_cfg.replace(
        **{
            "tune.steps": 25,
            "tune.batch_size": 4,
            "tune.lr": 2e-2,
            "tune.lora_dropout": 0.0,
            "tune.scft_drop": 0.0,
            # the tiny model's pooled states are nearly one vector: dot products of them are
            # alike for every pair (SmolLM2's are not; test_scft_loss covers the dot form)
            "tune.scft_similarity": "cosine",
            "tune.scft_temperature": 0.05,
        }
    )
    ds, _ = prepare(cfg.data, home_dir(cfg.paths.home))
    fix_examples(monkeypatch, name, examples(name, ds, cfg)[:4])
    source, identity = models.resolve(cfg.extract.model, tmp_path)
    out = stage.train_stage(name, cfg, ds, source, identity, [], tmp_path / name, progress=False)
    curve = np.loadtxt(tmp_path / name / "loss.csv", delimiter=",", skiprows=1)[:, 1]
    assert curve[-5:].mean() < 0.8 * curve[:3].mean(), (name, curve)
    assert (tmp_path / name / "adapter_model.safetensors").is_file()
    assert (tmp_path / name / "loss.png").is_file()
    assert out["steps"] == 25


def test_encoder_cpt_is_masked_lm_and_sft_is_refused(tune_cfg, tiny_bert, tmp_path, monkeypatch):
    cfg = tune_cfg.replace(
        **{
            "extract.model": str(tiny_bert),
            "tune.steps": 25,
            "tune.lr": 2e-2,
            "tune.lora_dropout": 0.0,
            "tune.cpt_mlm_prob": 0.5,
        }
    )
    ds, _ = prepare(cfg.data, home_dir(cfg.paths.home))
    source, identity = models.resolve(cfg.extract.model, tmp_path)
    fix_examples(monkeypatch, "cpt", examples("cpt", ds, cfg)[:4])
    out = stage.train_stage("cpt", cfg, ds, source, identity, [], tmp_path / "mlm", False)
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
    cfg = config.load(
        None,
        [
            "data.name=atomic:sft",
            f"data.data_dir={folder}",
            "data.filter=none",
            f"paths.home={home}",
            "tune.sft_per_user=50",
        ],
    )
    ds, _ = prepare(cfg.data, home)
    held = {int(t) for part in ("valid", "test") for t in eval_set(ds, part).targets}
    assert {ds.item_ids[i - 1][0] for i in held} == {"h"}  # the fixture did what it meant to
    pairs = sft_examples(ds, cfg, cfg.tune.options("sft"))
    assert len(pairs) > len(users)  # both tasks contributed
    text = "\n".join(p + a for p, a in pairs)
    assert "Heldout" not in text and "secret" not in text
    assert any("Which" in p for p, _ in pairs) and any("genres" in p for p, _ in pairs)


def train_whole_and_interrupted(name, cfg, tmp_path, monkeypatch):
    """Stage ``name`` trained into ``whole``, and into ``cut`` killed after its first
    checkpoint, then resumed."""
    source, identity = models.resolve(cfg.extract.model, tmp_path)
    ds, _ = prepare(cfg.data, home_dir(cfg.paths.home))
    stage.train_stage(name, cfg, ds, source, identity, [], tmp_path / "whole", False)

    real_save = stage.save_atomic

    def save_then_die(obj, path):
        real_save(obj, path)
        raise KeyboardInterrupt

    monkeypatch.setattr(stage, "save_atomic", save_then_die)
    with pytest.raises(KeyboardInterrupt):
        stage.train_stage(name, cfg, ds, source, identity, [], tmp_path / "cut", False)
    monkeypatch.setattr(stage, "save_atomic", real_save)
    assert (tmp_path / "cut" / "checkpoint.pt").is_file()
    stage.train_stage(name, cfg, ds, source, identity, [], tmp_path / "cut", False)


def test_interrupted_stage_resumes_to_the_same_adapter(tune_cfg, tmp_path, monkeypatch):
    train_whole_and_interrupted("cpt", tune_cfg, tmp_path, monkeypatch)

    from safetensors.torch import load_file

    a = load_file(tmp_path / "whole" / "adapter_model.safetensors")
    b = load_file(tmp_path / "cut" / "adapter_model.safetensors")
    assert a.keys() == b.keys() and a
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=1e-6)
    assert not (tmp_path / "cut" / "checkpoint.pt").exists()


def test_chain_caches_stages_and_merged_equals_unmerged(tune_cfg, tmp_path):
    cfg = tune_cfg.replace(**{"tune.stages": ["cpt", "sft"]})
    chain = tune(cfg, progress=False)
    folders, keys = chain.folders, chain.keys
    assert [t["stage"] for t in chain.trained] == ["cpt", "sft"]
    again = tune(cfg, progress=False)
    assert again.keys == keys and again.trained == []  # both reused from the cache
    only_cpt = tune(cfg.replace(**{"tune.stages": ["cpt"]}), progress=False)
    assert only_cpt.keys == keys[:1] and only_cpt.trained == []
    manifest = json.loads((folders[1] / "manifest.json").read_text())
    assert manifest["stages"] == [folders[0].name, "sft"]

    _, identity = models.resolve(cfg.extract.model, tmp_path)
    ds, _ = prepare(cfg.data, home_dir(cfg.paths.home))
    texts = [f"Item number {i} genre{i % 3}" for i in range(1, 9)]
    embeddings = {}
    for merge in (True, False):
        loaded = models.load(cfg.extract.model, models_dir=tmp_path)
        frozen = encode(
            loaded,
            tokenize(loaded, texts),
            pooling="mean",
            layer=-1,
            batch_size=4,
            padding_side="right",
            device=torch.device("cpu"),
        )
        loaded.model = apply_adapters(loaded.model, folders, identity, merge=merge)
        embeddings[merge] = encode(
            loaded,
            tokenize(loaded, texts),
            pooling="mean",
            layer=-1,
            batch_size=4,
            padding_side="right",
            device=torch.device("cpu"),
        )
    np.testing.assert_allclose(embeddings[True], embeddings[False], atol=1e-5)
    assert np.abs(embeddings[True] - frozen).max() > 1e-4  # the adapters changed something


def test_extract_uses_the_tuned_adapters(tune_cfg):
    frozen_path = store_path(tune_cfg)
    tuned_cfg = tune_cfg.replace(**{"tune.stages": ["scft"]})
    tuned_path = store_path(tuned_cfg)
    assert tuned_path != frozen_path
    ds, _ = prepare(tune_cfg.data, home_dir(tune_cfg.paths.home))
    frozen = open_store(frozen_path, ds).embeddings
    tuned = open_store(tuned_path, ds).embeddings
    assert frozen.shape == tuned.shape and not np.allclose(frozen, tuned)
    manifest = json.loads((tuned_path / "manifest.json").read_text())
    assert len(manifest["model_identity"]["adapters"]) == 1
    unmerged = store_path(tuned_cfg.replace(**{"tune.merge": False}))
    assert unmerged == tuned_path  # merging is how, not what: the same store


def test_bad_input_is_refused_before_training(tune_cfg, tmp_path, tiny_dir):
    with pytest.raises(TuneError, match=r"tune.target_modules: \['nope'\] not in the model"):
        tune(
            tune_cfg.replace(**{"tune.stages": ["cpt"], "tune.target_modules": ["nope"]}),
            progress=False,
        )
    with pytest.raises(config.ConfigError, match="tune.steps: must be >= 1"):
        tune_cfg.replace(**{"tune.steps": 0})
    with pytest.raises(TuneError, match="no sft examples"):
        tune(tune_cfg.replace(**{"tune.stages": ["sft"], "text.attributes": ["x"]}), progress=False)
    folders = tune(tune_cfg.replace(**{"tune.stages": ["cpt"]}), progress=False).folders
    from tests.conftest import TINY_CORPUS, build_tiny_llama

    other = build_tiny_llama(tmp_path / "other", TINY_CORPUS, seed=1)
    with pytest.raises(TuneError, match="was trained on base model"):
        store_path(
            tune_cfg.replace(**{"extract.model": str(other), "tune.adapter": str(folders[0])})
        )
    with pytest.raises(TuneError, match="not an adapter saved by `recxplore tune`"):
        tune(tune_cfg.replace(**{"tune.adapter": str(tiny_dir)}), progress=False)


def test_static_extractor_cannot_be_tuned():
    with pytest.raises(config.ConfigError, match="is not a neural network and cannot be tuned"):
        config.load(None, ["extract.model=tfidf-svd", "tune.stages=[cpt]"])


def test_each_run_seed_draws_its_own_adapters_unless_one_is_pinned(tune_cfg):
    from safetensors.torch import load_file

    def adapter(**overrides):
        folder = tune(tune_cfg.replace(**{"tune.stages": ["cpt"], **overrides}), progress=False)
        return load_file(folder.folders[-1] / "adapter_model.safetensors")

    a, b = adapter(**{"train.seed": 1}), adapter(**{"train.seed": 2})
    assert any(not torch.equal(a[k], b[k]) for k in a)
    pinned = [adapter(**{"train.seed": s, "tune.seed": 5}) for s in (1, 2)]
    assert all(torch.equal(pinned[0][k], pinned[1][k]) for k in pinned[0])


@pytest.mark.parametrize("learn", [True, False])
def test_scft_temperature_trains_with_the_lora_weights_unless_fixed(tune_cfg, tmp_path, learn):
    cfg = tune_cfg.replace(**{"tune.scft_learn_temperature": learn, "tune.scft_temperature": 3.0})
    ds, _ = prepare(cfg.data, home_dir(cfg.paths.home))
    source, identity = models.resolve(cfg.extract.model, tmp_path)
    stage.train_stage("scft", cfg, ds, source, identity, [], tmp_path / "scft", progress=False)
    record = json.loads((tmp_path / "scft" / "scft_temperature.json").read_text())
    assert record["trained"] is learn
    if learn:  # 4 Adam steps at lr 1e-2 move it by about 0.04
        assert 0.0 < abs(record["temperature"] - 3.0) < 0.1
    else:
        assert "temperature" not in record


def test_the_contrastive_loss_is_float32_under_bfloat16_autocast():
    from recxplore.contrastive import contrastive_loss

    # an LLM's pooled states: long and nearly parallel (norm about 34, mean cosine about 0.97)
    torch.manual_seed(0)
    common = torch.randn(64)
    a = (common / common.norm() * 34 + 0.5 * torch.randn(32, 64)).requires_grad_()
    b = a.detach() + 0.2 * torch.randn(32, 64)
    exact = contrastive_loss(a, b, 3.0)
    (g_exact,) = torch.autograd.grad(exact, a)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        mixed = contrastive_loss(a, b, 3.0)
    (g_mixed,) = torch.autograd.grad(mixed, a)
    assert mixed.dtype == torch.float32
    # in bfloat16 these dot products round by several units: the loss and gradient were noise
    assert torch.allclose(mixed, exact, rtol=1e-6)
    assert torch.allclose(g_mixed, g_exact, rtol=1e-5, atol=1e-7)


def test_scft_loss_is_llmembs_contrastive_loss():
    import math

    from recxplore.contrastive import contrastive_loss
    from recxplore.tune.objectives.scft import drop_view

    torch.manual_seed(0)
    a = torch.randn(6, 32) * 3
    near = contrastive_loss(a, a + 0.01 * torch.randn(6, 32), temperature=3.0)
    assert float(near) < 0.1 * math.log(6)  # views that tell items apart: far below chance
    same = torch.ones(6, 32)
    assert abs(float(contrastive_loss(same, same, 3.0)) - math.log(6)) < 1e-5  # chance
    # a duplicated item's two rows split the target with each other: log 2 each, not more
    twins = torch.cat([a[:5], a[:1]])
    assert abs(float(contrastive_loss(twins, twins, 3.0)) - 2 * math.log(2) / 6) < 1e-3
    rng = np.random.default_rng(0)
    meta = {"title": "A", "year": "1995", "genres": "Drama"}
    views = [drop_view(meta, 0.4, rng) for _ in range(20)]
    assert all(len(v) == 2 for v in views)  # floor(3 x 0.4) = 1 attribute left out
    assert len({tuple(v) for v in views}) > 2  # in a random order
    assert drop_view({"title": "A"}, 0.9, rng) == {"title": "A"}
