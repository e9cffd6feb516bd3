"""`recxplore run`: a configuration beside its ID-only baseline, through the cache."""

from recxplore import pipeline


def test_run_compares_with_the_id_baseline(tiny_cfg):
    cfg = tiny_cfg.replace(
        **{
            "adapt.fusion": "replace",
            "adapt.adapter": "linear",
            "extract.model": "tfidf-svd",
            "extract.static_dim": 8,
            "adapt.pca": None,
            "train.epochs": 1,
        }
    )
    out = pipeline.run(cfg, progress=False)
    baseline, model = out["runs"]
    assert baseline["config"]["adapt"]["fusion"] == "id"
    assert model["config"]["adapt"]["fusion"] == "replace"
    lines = out["table"].splitlines()
    assert lines[2].startswith("| ID-only sasrec |") and lines[4].startswith("| change |")
    assert "%" in lines[4]
    again = pipeline.run(cfg, progress=False)
    assert [r["run_dir"] for r in again["runs"]] == [r["run_dir"] for r in out["runs"]]
    # each run records what it trains and the one-off stages its inputs took
    assert baseline["cost"] == {
        "trained_parameters": baseline["cost"]["trained_parameters"],
        "upstream_seconds": {},
    }
    assert 0 < model["cost"]["trained_parameters"] < baseline["cost"]["trained_parameters"]
    assert set(model["cost"]["upstream_seconds"]) == {"extract"}


def test_main_job_is_the_papers_best_with_overrides_on_top():
    cfg = pipeline.main_job_config(None, ["data.name=ml-1m"])
    assert (cfg.adapt.fusion, cfg.adapt.adapter, cfg.tune.stages) == (
        "replace",
        "moe",
        ["cpt", "sft"],
    )
    assert cfg.data.name == "ml-1m"
