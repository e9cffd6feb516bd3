"""Pinned cache keys: a change that moves one fails here, loudly. If a key must move (a setting
that could never change a result leaves it, or a new one enters), update the pin and say why in
the commit; ``scripts/remote/rekey.py`` renames finished run folders to their new keys. (A
backbone whose code changes what it computes bumps its registry ``version``, which enters its
run keys, so runs of the old code are never reused; a tuning objective's ``version`` enters its
stage keys the same way.)"""

from __future__ import annotations

import pytest

from recxplore import config
from recxplore.adapt.reduce import pca_settings
from recxplore.cache import stage_key
from recxplore.extract.stage import store_key
from recxplore.text.rewrite import text_identity
from recxplore.train.run import run_identity
from recxplore.tune.stage import stage_settings

DATASET = "d" * 20


@pytest.fixture(autouse=True)
def cpu_without_bfloat16(monkeypatch):
    """Keys as computed on a CPU without native bfloat16, whatever CPU runs the tests."""
    import recxplore.runtime as runtime

    monkeypatch.setattr(runtime, "fast_bfloat16", lambda kind: kind == "cuda")


MODEL = {"model_type": "llama", "sha": "m" * 20}

PINNED = [
    (
        [],
        {
            "train": "6266ef2002ea5845816c",
            "extract": "80c4eff4d4c814215f9e",
            "reduce": "1bd152022bd67f17be56",
            "tune-cpt": "320c1cd3a03bd0dc9abc",
            "tune-sft": "f9385d05c23aa0857757",
            "tune-scft": "db1415dd06ab548d0312",
        },
    ),
    (
        ["adapt.fusion=replace", "adapt.adapter=moe"],
        {
            "train": "d4a17edc9343474592e3",
            "extract": "80c4eff4d4c814215f9e",
            "reduce": "1bd152022bd67f17be56",
            "tune-cpt": "320c1cd3a03bd0dc9abc",
            "tune-sft": "f9385d05c23aa0857757",
            "tune-scft": "db1415dd06ab548d0312",
        },
    ),
    (
        ["adapt.fusion=concat", "adapt.adapter=pq", "model.backbone=gru4rec", "train.loss=bce"],
        {
            "train": "23ffd952391126e32c75",
            "extract": "80c4eff4d4c814215f9e",
            "reduce": "1bd152022bd67f17be56",
            "tune-cpt": "320c1cd3a03bd0dc9abc",
            "tune-sft": "f9385d05c23aa0857757",
            "tune-scft": "db1415dd06ab548d0312",
        },
    ),
    (
        [
            "adapt.fusion=align",
            "adapt.adapter=linear",
            "train.device=cuda",
            "tune.stages=[cpt,sft]",
        ],
        {
            "train": "6c373f6360c9246e4245",
            "extract": "80c4eff4d4c814215f9e",
            "reduce": "1bd152022bd67f17be56",
            "tune-cpt": "320c1cd3a03bd0dc9abc",
            "tune-sft": "f9385d05c23aa0857757",
            "tune-scft": "db1415dd06ab548d0312",
        },
    ),
]


def keys_of(cfg: config.Config) -> dict[str, str]:
    out = {
        "train": stage_key("train", run_identity(cfg), (DATASET, "r" * 20)),
        "extract": store_key(cfg, DATASET, MODEL),
        "reduce": stage_key("reduce", pca_settings(cfg.adapt), ("s" * 20, DATASET)),
    }
    for stage in ("cpt", "sft", "scft"):
        out[f"tune-{stage}"] = stage_key(
            "tune",
            {
                "stage": stage,
                "tune": stage_settings(cfg, stage),
                "text": text_identity(cfg, rewritten=False),
                "model": MODEL,
            },
            (DATASET, ""),
        )
    return out


@pytest.mark.parametrize("overrides,expected", PINNED, ids=lambda v: str(v)[:40])
def test_keys_are_pinned(overrides, expected):
    assert keys_of(config.load(None, overrides)) == expected


def test_settings_that_cannot_change_a_result_leave_every_key_alone():
    base = config.load(None, ["adapt.fusion=replace", "tune.stages=[cpt]"])
    neutral = [
        "train.threads=1",
        "eval.batch_size=7",
        "paths.home=/elsewhere",
        "data.data_dir=/raw/elsewhere",
        "extract.device=cpu",
        "tune.save_every=3",
        "tune.threads=2",
        "tune.merge=false",
        "extract.offline=false",
    ]
    for override in neutral:
        assert keys_of(
            config.load(None, ["adapt.fusion=replace", "tune.stages=[cpt]", override])
        ) == keys_of(base), override


def test_a_component_setting_moves_only_the_keys_it_can_change():
    base = keys_of(config.load(None, ["adapt.fusion=replace"]))
    sft = keys_of(config.load(None, ["adapt.fusion=replace", "tune.sft_history=9"]))
    assert sft["tune-sft"] != base["tune-sft"]
    assert {k: v for k, v in sft.items() if k != "tune-sft"} == {
        k: v for k, v in base.items() if k != "tune-sft"
    }
    moe = keys_of(config.load(None, ["adapt.fusion=replace", "adapt.moe_experts=3"]))
    assert moe["train"] != base["train"] and moe["extract"] == base["extract"]


def test_lora_stages_draw_from_the_run_seed_unless_pinned():
    by_seed = [keys_of(config.load(None, [f"train.seed={s}"])) for s in (42, 43)]
    assert by_seed[0]["tune-cpt"] != by_seed[1]["tune-cpt"]  # each seed its own adapters
    pinned = [keys_of(config.load(None, [f"train.seed={s}", "tune.seed=0"])) for s in (42, 43)]
    assert pinned[0]["tune-cpt"] == pinned[1]["tune-cpt"]  # one draw shared on purpose
    # tune.seed=0 is what every stage used before seeds followed the run: the same keys
    assert pinned[0]["tune-cpt"] == "6d8c255e2d528d448357"


def test_a_backbone_version_enters_only_its_own_run_keys():
    from recxplore.train.run import run_identity

    assert run_identity(config.load(None, []))["backbone_version"] == 2  # sasrec's positions
    assert "backbone_version" not in run_identity(config.load(None, ["model.backbone=gru4rec"]))


def test_precision_enters_run_keys_as_it_runs():
    import recxplore.runtime as runtime

    auto = run_identity(config.load(None, []))
    assert "precision" not in auto  # float32 on this (patched) CPU: as train.precision=float32
    assert auto == run_identity(config.load(None, ["train.precision=float32"]))
    forced = run_identity(config.load(None, ["train.precision=bfloat16"]))
    assert forced["precision"] == "bfloat16"
    assert run_identity(config.load(None, ["train.device=cuda"]))["precision"] == "bfloat16"
    runtime.fast_bfloat16 = lambda kind: True  # a CPU with AVX512-BF16 (undone by the fixture)
    assert run_identity(config.load(None, [])) == forced


def test_settings_of_a_component_not_chosen_leave_keys_alone():
    base = config.load(None, ["adapt.fusion=replace", "adapt.adapter=moe"])
    unused = {"adapt.align_weight": 0.5, "adapt.mlp_hidden": 32, "extract.eol_template": "{text}!"}
    for key, value in unused.items():
        assert keys_of(base.replace(**{key: value})) == keys_of(base), key
    eol = base.replace(**{"extract.pooling": "eol"})
    other = eol.replace(**{"extract.eol_template": "{text}!"})
    assert keys_of(other)["extract"] != keys_of(eol)["extract"]  # chosen: it counts
    moe = base.replace(**{"adapt.moe_experts": 4})
    assert keys_of(moe)["train"] != keys_of(base)["train"]
