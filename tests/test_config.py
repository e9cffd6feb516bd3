from pathlib import Path

import pytest
import yaml

from recxplore import config
from recxplore.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]


def test_defaults_validate_and_round_trip(tmp_path):
    cfg = config.load()
    path = tmp_path / "c.yaml"
    path.write_text(config.dump(cfg))
    assert config.load(path) == cfg


def test_shipped_default_yaml_is_the_embedded_default():
    assert config.load(ROOT / "configs" / "default.yaml") == config.load()


@pytest.mark.parametrize("path", sorted((ROOT / "configs").rglob("*.yaml")), ids=str)
def test_every_shipped_yaml_validates(path):
    """Configs load; sweep files (configs/paper/) validate every cell."""
    import yaml

    from recxplore.sweep import load_sweep

    raw = yaml.safe_load(path.read_text())
    if {"cells", "grid", "modules"} & set(raw):
        assert load_sweep(path).cells
    else:
        config.load(path)


def test_overrides_are_typed():
    cfg = config.load(
        None, ["train.lr=0.01", "eval.ks=[1, 3]", "train.select_metric=HR@3", "data.min_rating=4"]
    )
    assert cfg.train.lr == 0.01 and cfg.eval.ks == [1, 3] and cfg.data.min_rating == 4.0


def test_all_problems_reported_at_once():
    with pytest.raises(ConfigError) as err:
        config.load(
            None,
            [
                "train.lr=-1",
                "train.epochz=3",
                "foo.bar=1",
                "model.backbone=nope",
                "train.loss=hinge",
                "model.hidden=abc",
            ],
        )
    text = str(err.value)
    assert len(err.value.problems) == 6
    assert "train.lr: must be > 0.0; got -1" in text
    assert "train.epochz: unknown key; valid keys are" in text
    assert "foo: unknown section" in text
    assert "model.backbone: unknown backbone; valid names are bert4rec, gru4rec, sasrec" in text
    assert (
        "train.loss: unknown loss; valid names are bce, ce, in_batch, sampled; got 'hinge'" in text
    )
    assert "model.hidden: must be an integer; got 'abc'" in text


@pytest.mark.parametrize(
    "override, message",
    [
        ("model.heads=3", r"model.heads: must divide model.hidden=64"),
        ("data.name=amazon2014", r"amazon2014 needs a name after a colon, e.g. amazon2014:Beauty"),
        ("data.name=netflix", r"unknown dataset 'netflix'; valid forms are"),
        ("train.num_negatives=5", r"train.num_negatives: not used by train.loss='ce'"),
        ("train.select_metric=AUC", r"train.select_metric: must be HR@K, NDCG@K or MRR@K"),
        ("eval.ks=[]", r"eval.ks: must be a non-empty list"),
        ("model.dropout=1.0", r"model.dropout: must be < 1.0; got 1.0"),
        ("trainlr=3", r"expected section.key=value|expected exactly section.key"),
        ("train.lr", r"expected section.key=value"),
    ],
)
def test_error_messages(override, message):
    with pytest.raises(ConfigError, match=message):
        config.load(None, [override])


def test_missing_and_malformed_files(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        config.load(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("train: [1, 2\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        config.load(bad)
    listing = tmp_path / "list.yaml"
    listing.write_text(yaml.safe_dump([1, 2]))
    with pytest.raises(ConfigError, match="must be a mapping of sections"):
        config.load(listing)


def test_replace_validates():
    cfg = config.load().replace(**{"train.seed": 43})
    assert cfg.train.seed == 43
    with pytest.raises(ConfigError, match="train.seed: must be an integer"):
        cfg.replace(**{"train.seed": "x"})


def test_describe_lists_every_key():
    text = config.describe()
    for section, cls in config.SECTIONS.items():
        for key in config.section_dict(cls()):
            assert f"  {key} (" in text, f"{section}.{key}"


def test_whole_pca_sizes_are_one_setting():
    from recxplore import config

    cfg = config.load(None, ["adapt.pca=256.0"])
    assert repr(cfg.adapt.pca) == "256"  # so 256 and 256.0 share every cache key
    assert repr(cfg.replace(**{"adapt.fusion": "align"}).adapt.pca) == "256"
    assert config.load(None, ["adapt.pca=0.9"]).adapt.pca == 0.9


def test_replace_and_defaults_given_explicitly_keep_cache_keys():
    from recxplore import config
    from recxplore.cache import stage_key

    cfg = config.load(None, [])
    same = [
        cfg.replace(**{"adapt.fusion": "align"}).replace(**{"adapt.fusion": cfg.adapt.fusion}),
        config.load(None, ["tune.lora_alpha=32.0", "adapt.align_temperature=2"]),
    ]
    for other in same:  # float fields with whole-number defaults used to come back as 32.0
        for section in ("tune", "adapt", "train"):
            assert stage_key("k", other.to_dict()[section]) == stage_key(
                "k", cfg.to_dict()[section]
            ), section


def test_an_override_may_write_a_float_without_a_dot():
    # YAML 1.1 reads 2e-4 as a string; on the command line it means the number
    assert config.load(None, ["train.lr=2e-4"]).train.lr == 2e-4
    assert config.load(None, ["train.lr=1.5E-3"]).train.lr == 1.5e-3
