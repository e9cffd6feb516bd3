"""Reports: mean ± std tables, best marked, change and paired t-test against a baseline, figure."""

import csv
import json
import shutil
from pathlib import Path

import yaml

from recxplore import config
from recxplore.cli import main
from recxplore.pipeline import train
from recxplore.report import write_report
from recxplore.sweep import load_sweep, run_sweep


def test_report_from_a_sweep(tiny_cfg, tmp_path, capsys):
    (tmp_path / "base.yaml").write_text(config.dump(tiny_cfg.replace(**{"train.epochs": 2})))
    path = tmp_path / "s.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "name": "r",
                "config": "base.yaml",
                "seeds": [1, 2],
                "baseline": "sasrec",
                "cells": {"sasrec": [], "gru4rec": ["model.backbone=gru4rec"]},
            }
        )
    )
    record = run_sweep(load_sweep(path), progress=False)
    assert (
        main(
            [
                "report",
                record["path"],
                "--out",
                str(tmp_path / "out"),
                "--baseline",
                "sasrec",
                "--title",
                "Two backbones",
                "--json",
            ]
        )
        == 0
    )
    files = capsys.readouterr().out
    assert "report.md" in files and "ndcg10.png" in files
    text = (tmp_path / "out" / "report.md").read_text()
    # the recorded command remakes this report, options included
    assert f"--out {tmp_path / 'out'} --baseline sasrec --title 'Two backbones'" in text
    assert "| sasrec (baseline) | 2 |" in text and " ± " in text and "**" in text
    assert "Notes:" not in text  # nothing failed, nothing changed device
    assert "## Cost" in text and "| sasrec |" in text.split("## Cost")[1]
    rows = list(csv.DictReader(open(tmp_path / "out" / "table.csv")))
    gru = next(r for r in rows if r["cell"] == "gru4rec")
    assert gru["full NDCG@10 p"] != "" and float(gru["full NDCG@10 change"]) > -1
    assert (tmp_path / "out" / "ndcg10.png").stat().st_size > 1000
    # the precision the runs trained in, resolved on this machine, with counts where they mix
    run_files = [Path(r["run_dir"]) / "results.json" for r in record["runs"]]
    precision = json.loads(run_files[0].read_text())["timing"]["precision"]
    assert precision in ("float32", "bfloat16")
    assert f"Training precision: {precision}. Test metrics" in text
    other = {"float32": "bfloat16", "bfloat16": "float32"}[precision]
    results = json.loads(run_files[0].read_text())
    results["timing"]["precision"] = other
    run_files[0].write_text(json.dumps(results))
    write_report([record["path"]], tmp_path / "mixed")
    text = (tmp_path / "mixed" / "report.md").read_text()
    assert f"Training precision: {precision} (3 runs), {other} (1 run)." in text


def test_sweeps_sharing_a_cell_count_each_run_once(tiny_cfg, tmp_path):
    import pytest

    from recxplore.report import ReportError, collect

    (tmp_path / "base.yaml").write_text(config.dump(tiny_cfg.replace(**{"train.epochs": 1})))

    def sweep(name, cells):
        path = tmp_path / f"{name}.yaml"
        spec = {"name": name, "config": "base.yaml", "seeds": [1, 2], "cells": cells}
        path.write_text(yaml.safe_dump(spec))
        return run_sweep(load_sweep(path), progress=False)["path"]

    first = sweep("a", {"sasrec": [], "gru4rec": ["model.backbone=gru4rec"]})
    second = sweep("b", {"sasrec": [], "wide": ["model.hidden=8"]})
    cells = collect([Path(first), Path(second)]).cells
    assert [r["seed"] for r in cells["sasrec"]] == [1, 2]  # not 1, 2, 1, 2
    assert set(cells) == {"sasrec", "gru4rec", "wide"}
    clash = sweep("c", {"sasrec": ["model.dropout=0.3"]})  # same name, other runs
    with pytest.raises(ReportError, match="cell 'sasrec': seed 1 has two different runs"):
        collect([Path(first), Path(clash)])


def test_report_labels_loose_runs_by_what_differs(tiny_cfg, tmp_path):
    runs = [
        train(
            tiny_cfg.replace(**{"train.epochs": 1, "train.seed": s, "train.loss": loss}),
            progress=False,
        )
        for s in (1, 2)
        for loss in ("ce", "bce")
    ]
    out = write_report([r["run_dir"] for r in runs], tmp_path / "out", baseline="train.loss=ce")
    assert out["cells"] == ["train.loss=ce", "train.loss=bce"]


def test_a_copied_home_is_read_where_it_is_now(tiny_cfg, tmp_path):
    """Run folders record where they were trained; a home copied elsewhere (as from a GPU
    machine) is reused from the cache and reported from its new place."""
    cfgs = [tiny_cfg.replace(**{"train.epochs": 1, "train.loss": loss}) for loss in ("ce", "bce")]
    for cfg in cfgs:
        train(cfg, progress=False)
    moved = tmp_path / "moved"
    shutil.copytree(tiny_cfg.paths.home, moved)
    shutil.rmtree(tiny_cfg.paths.home)
    runs = [train(cfg.replace(**{"paths.home": str(moved)}), progress=False) for cfg in cfgs]
    for run in runs:
        folder = Path(run["run_dir"])
        assert folder.parent == moved / "runs"
        assert json.loads((folder / "results.json").read_text())["run_dir"] != run["run_dir"]
    out = write_report([r["run_dir"] for r in runs], tmp_path / "out", baseline="train.loss=ce")
    assert out["cells"] == ["train.loss=ce", "train.loss=bce"]


def test_report_notes_failed_runs_and_runs_that_changed_device(tiny_cfg, tmp_path, monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    (tmp_path / "base.yaml").write_text(config.dump(tiny_cfg.replace(**{"train.epochs": 1})))
    path = tmp_path / "s.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "name": "n",
                "config": "base.yaml",
                "seeds": [1],
                "cells": {"cpu": [], "gpu": ["train.device=cuda"]},
            }
        )
    )
    record = run_sweep(load_sweep(path), progress=False)
    # as `--finish-on cpu` leaves a run that a GPU started
    results_file = Path(record["runs"][0]["run_dir"]) / "results.json"
    results = json.loads(results_file.read_text())
    results["timing"]["devices"] = [
        {"from_epoch": 1, "device": "cuda"},
        {"from_epoch": 2, "device": "cpu"},
    ]
    results_file.write_text(json.dumps(results))
    write_report([record["path"]], tmp_path / "out")
    text = (tmp_path / "out" / "report.md").read_text()
    assert "- `gpu` seed 1: not in the tables (ConfigError: invalid configuration" in text
    assert "- `cpu` seed 1: trained on cuda from epoch 1, cpu from epoch 2." in text


def test_a_p_value_that_underflows_is_not_printed_as_zero():
    from recxplore.report import summary_table

    row = {
        "cell": "c",
        "seeds": 1,
        "full NDCG@10 change": -0.5,
        "full NDCG@10 p": 0.0,
        "sampled NDCG@10 change": -0.3,
        "sampled NDCG@10 p": 2.5e-7,
    }
    row.update(
        {
            f"{p} {m}": 0.1
            for p in ("full", "sampled")
            for m in ("HR@5", "HR@10", "NDCG@5", "NDCG@10")
        }
    )
    table = summary_table([row], baseline="b")
    assert "| < 1e-300 |" in table and "| 2.5e-07 |" in table and "| 0 |" not in table


def test_group_tables_come_from_ranks_also_for_runs_made_before_groups(tiny_cfg, tmp_path):
    runs = [
        train(tiny_cfg.replace(**{"train.epochs": 1, "train.seed": s}), progress=False)
        for s in (1, 2)
    ]
    recorded = runs[0]["groups"]["test"]
    assert recorded["popularity: head"]["users"] + recorded["popularity: tail"]["users"] == len(
        list(csv.DictReader(open(Path(runs[0]["run_dir"]) / "test_ranks.csv")))
    )
    for r in runs:  # as a run made before groups were recorded
        path = Path(r["run_dir"]) / "results.json"
        old = json.loads(path.read_text())
        old.pop("groups")
        path.write_text(json.dumps(old))
    out = write_report([r["run_dir"] for r in runs], tmp_path / "out")
    rows = list(csv.DictReader(open(tmp_path / "out" / "groups.csv")))
    tail = next(r for r in rows if r["family"] == "popularity" and r["group"] == "tail")
    # the same groups and values as the runs recorded
    values = [run["groups"]["test"]["popularity: tail"]["full"]["NDCG@10"] for run in runs]
    assert int(tail["users"]) == recorded["popularity: tail"]["users"]
    assert abs(float(tail["NDCG@10"]) - sum(values) / 2) < 1e-5
    assert "groups.png" in " ".join(out["files"])
    assert "**popularity**" in (tmp_path / "out" / "report.md").read_text()


def test_each_regime_is_compared_with_its_own_baseline(tiny_cfg, tmp_path):
    (tmp_path / "base.yaml").write_text(config.dump(tiny_cfg.replace(**{"train.epochs": 1})))
    path = tmp_path / "s.yaml"
    cells = {
        "id@all": [],
        "gru@all": ["model.backbone=gru4rec"],
        "id@4": ["data.max_history=4"],
        "gru@4": ["model.backbone=gru4rec", "data.max_history=4"],
    }
    path.write_text(
        yaml.safe_dump(
            {
                "name": "reg",
                "config": "base.yaml",
                "seeds": [1],
                "baseline": "id@all",
                "cells": cells,
            }
        )
    )
    record = run_sweep(load_sweep(path), progress=False)
    out = write_report([record["path"]], tmp_path / "out")
    rows = {r["cell"]: r for r in csv.DictReader(open(tmp_path / "out" / "table.csv"))}
    assert rows["gru@4"]["baseline"] == "id@4" and rows["gru@all"]["baseline"] == "id@all"
    assert rows["id@4"]["baseline"] == ""  # the baseline of its own regime
    assert "sparsity.png" in " ".join(out["files"])
