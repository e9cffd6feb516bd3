"""Sweeps: cells, grids and the one-module-at-a-time method; resumable; failures recorded."""

import json
from pathlib import Path

import pytest
import yaml

from recxplore import config
from recxplore.errors import ConfigError
from recxplore.local_runs import SerialRuns
from recxplore.pipeline import train
from recxplore.report import write_report
from recxplore.sweep import load_sweep, only_cells, run_sweep, search_seeds


@pytest.fixture
def base_file(tiny_cfg, tmp_path):
    path = tmp_path / "base.yaml"
    path.write_text(config.dump(tiny_cfg.replace(**{"train.epochs": 1})))
    return path


def write(tmp_path, body):
    path = tmp_path / "sweep.yaml"
    path.write_text(
        yaml.safe_dump({"config": "base.yaml", "seeds": [1, 2], **body}, sort_keys=False)
    )
    return path


def test_sweep_runs_cells_records_failures_and_resumes(base_file, tmp_path):
    path = write(
        tmp_path,
        {
            "name": "demo",
            "baseline": "id",
            "cells": {"id": [], "broken": ["data.name=atomic:nowhere"]},
            "grid": {"model.backbone": ["gru4rec"], "train.loss": ["ce", "bce"]},
        },
    )
    sweep = load_sweep(path)
    assert list(sweep.cells) == ["id", "broken", "gru4rec/ce", "gru4rec/bce"]
    calls = []

    def counting(cfg, progress=True):
        calls.append(cfg)
        return train(cfg, progress=progress)

    record = run_sweep(sweep, progress=False, train=counting)
    status = [(r["cell"], r["seed"], r["status"]) for r in record["runs"]]
    assert status.count(("broken", 1, "failed")) == 1 and len(status) == 8
    assert sum(s == "ok" for *_, s in status) == 6
    # seed-major: every cell has its first seed before any cell gets its second
    assert [seed for _, seed, _ in status] == [1, 1, 1, 1, 2, 2, 2, 2]
    assert [c.train.seed for c in calls] == [1, 1, 1, 1, 2, 2, 2, 2]
    failed = next(r for r in record["runs"] if r["status"] == "failed")
    assert "atomic:nowhere" in failed["error"]
    on_disk = json.loads((tmp_path / "home" / "sweeps" / "demo" / "sweep.json").read_text())
    assert on_disk["runs"] == record["runs"]
    before = [r["run_dir"] for r in record["runs"] if r["status"] == "ok"]
    again = run_sweep(sweep, progress=False)  # finished runs come from the cache
    assert [r["run_dir"] for r in again["runs"] if r["status"] == "ok"] == before


def test_modules_pick_winners_on_validation_and_assemble(base_file, tmp_path):
    path = write(
        tmp_path,
        {
            "seeds": [1],
            "modules": {
                "backbone": {"model.backbone": ["sasrec", "gru4rec"]},
                "loss": {"train.loss": ["ce", "bce"]},
                "cutoffs": {"eval.ks": [[5, 10], [5, 10, 20]]},
            },
        },
    )  # list values, as tune.stages has
    record = run_sweep(load_sweep(path), progress=False)
    cells = {r["cell"]: r for r in record["runs"]}
    assert set(cells) == {
        "backbone=sasrec",
        "backbone=gru4rec",
        "loss=ce",
        "loss=bce",
        "cutoffs=[5, 10]",
        "cutoffs=[5, 10, 20]",
        "assembled",
    }
    valid = {}
    for label, r in cells.items():
        results = json.loads((tmp_path / r["run_dir"] / "results.json").read_text())
        valid[label] = results["metrics"]["valid"]["full"]["NDCG@10"]
    best_backbone = max(["sasrec", "gru4rec"], key=lambda b: valid[f"backbone={b}"])
    assert record["winners"]["backbone"]["value"] == best_backbone
    assert f"model.backbone={best_backbone}" in cells["assembled"]["overrides"]
    text = (Path(write_report([record["path"]], tmp_path / "out")["files"][0])).read_text()
    assert f"run together as `assembled`: model.backbone={best_backbone}," in text
    assert f"backbone={best_backbone} {valid[f'backbone={best_backbone}']:.4f}" in text


def test_bad_sweep_files_name_the_problem(base_file, tmp_path):
    with pytest.raises(ConfigError, match=r"cell 'x': .*model.backbone: unknown backbone"):
        load_sweep(write(tmp_path, {"cells": {"x": ["model.backbone=nope"]}}))
    with pytest.raises(ConfigError, match="celss: unknown key"):
        load_sweep(write(tmp_path, {"celss": {}}))
    with pytest.raises(ConfigError, match="baseline: 'y' is not a cell"):
        load_sweep(write(tmp_path, {"cells": {"x": []}, "baseline": "y"}))


def test_parallel_jobs_give_the_runs_of_a_serial_sweep(base_file, tmp_path):
    body = {"name": "par", "cells": {"id": [], "gru": ["model.backbone=gru4rec"]}}
    parallel = run_sweep(load_sweep(write(tmp_path, body)), progress=False, jobs=2)
    serial_home = tmp_path / "serial"
    serial = run_sweep(
        load_sweep(write(tmp_path, body), [f"paths.home={serial_home}"]), progress=False
    )
    assert [r["status"] for r in parallel["runs"]] == ["ok"] * 4
    assert [(r["cell"], r["seed"]) for r in parallel["runs"]] == [
        (r["cell"], r["seed"]) for r in serial["runs"]
    ]
    for a, b in zip(parallel["runs"], serial["runs"]):
        assert str(serial_home) in b["run_dir"] and str(serial_home) not in a["run_dir"]
        metrics = [
            json.loads((tmp_path / r["run_dir"] / "results.json").read_text())["metrics"]
            for r in (a, b)
        ]
        assert metrics[0] == metrics[1]  # same runs, computed in other processes


def test_search_chooses_each_cells_setting_on_validation_then_runs_its_seeds(base_file, tmp_path):
    path = write(
        tmp_path,
        {
            "name": "searched",
            "baseline": "id",
            "cells": {"id": [], "gru": ["model.backbone=gru4rec"]},
            "search": {"train.lr": [1e-4, 1e-2]},
            "search_seed": 2,
        },
    )
    record = run_sweep(load_sweep(path), progress=False)
    searched = [r for r in record["runs"] if r.get("search")]
    assert [(r["cell"], r["seed"]) for r in searched] == [("id", 2)] * 2 + [("gru", 2)] * 2
    for label in ("id", "gru"):
        valid = {
            r["overrides"][-1]: json.loads((Path(r["run_dir"]) / "results.json").read_text())[
                "metrics"
            ]["valid"]["full"]["NDCG@10"]
            for r in searched
            if r["cell"] == label
        }
        best = max(valid, key=valid.get)
        chosen = record["search"]["chosen"][label]
        assert chosen["overrides"] == [best]
        finals = [r for r in record["runs"] if r["cell"] == label and not r.get("search")]
        assert [r["seed"] for r in finals] == [1, 2]
        assert all(r["overrides"][-1] == best for r in finals)
        # the search seed's final run is the search's own run, from the cache
        search_run = next(r for r in searched if r["cell"] == label and r["overrides"][-1] == best)
        assert next(r for r in finals if r["seed"] == 2)["run_dir"] == search_run["run_dir"]
    assert record["search"]["settings"] == 2 and record["search"]["seeds"] == [2]
    text = Path(write_report([record["path"]], tmp_path / "out")["files"][0]).read_text()
    assert "each of the 2 settings of train.lr in [0.0001, 0.01] on seed 2" in text
    assert f"| gru | {record['search']['chosen']['gru']['overrides'][0]} |" in text
    assert "| id (baseline) | 2 |" in text  # search runs stay out of the tables


class _TwoWorkersInOrder(SerialRuns):
    """Two runs submitted at once, ending in the order submitted; logs what the sweep does."""

    width = 2

    def __init__(self, jobs):
        super().__init__()
        self.log = []

    def submit(self, fn, *args):
        self.log.append(("submit", args[1][-1] if args[1] else "", args[2]))
        return super().submit(fn, *args)

    def wait(self, handles):
        handle, outcome = super().wait(handles)
        self.log.append(("end", outcome["entry"]["overrides"][-1:], None))
        return handle, outcome


def test_a_cells_seeds_start_when_its_own_search_ends(base_file, tmp_path, monkeypatch):
    pools = []
    monkeypatch.setattr(
        "recxplore.sweep.ProcessRuns",
        lambda jobs: pools.append(_TwoWorkersInOrder(jobs)) or pools[-1],
    )
    path = write(
        tmp_path,
        {
            "name": "no-barrier",
            "cells": {"id": [], "gru": ["model.backbone=gru4rec"]},
            "search": {"train.lr": [1e-4, 1e-2]},
            "search_seed": 2,
        },
    )
    record = run_sweep(load_sweep(path), progress=False, jobs=2)
    log = pools[0].log
    submitted = [(what, seed) for kind, what, seed in log if kind == "submit"]
    assert submitted[:4] == [("train.lr=0.0001", 2), ("train.lr=0.01", 2)] * 2
    # id's seed 1 starts while gru's last search run is still going
    first_seed = next(i for i, (kind, _, seed) in enumerate(log) if kind == "submit" and seed == 1)
    fourth_end = [i for i, (kind, *_) in enumerate(log) if kind == "end"][3]
    assert first_seed < fourth_end
    # the record still lists the searches first, then the seeds seed-major
    assert [(r["cell"], r.get("search", False)) for r in record["runs"]][:4] == [
        ("id", True),
        ("id", True),
        ("gru", True),
        ("gru", True),
    ]
    assert [(r["cell"], r["seed"]) for r in record["runs"][4:]] == [
        ("id", 1),
        ("gru", 1),
        ("id", 2),
        ("gru", 2),
    ]


def test_several_search_seeds_choose_on_the_mean_validation_score(base_file, tmp_path):
    path = write(
        tmp_path,
        {
            "name": "searched-twice",
            "cells": {"id": []},
            "search": {"train.lr": [1e-4, 1e-2]},
            "search_seed": [1, 2],
        },
    )
    record = run_sweep(load_sweep(path), progress=False)
    searched = [r for r in record["runs"] if r.get("search")]
    assert sorted((r["overrides"][-1], r["seed"]) for r in searched) == [
        ("train.lr=0.0001", 1),
        ("train.lr=0.0001", 2),
        ("train.lr=0.01", 1),
        ("train.lr=0.01", 2),
    ]
    valid: dict[str, list[float]] = {}
    for r in searched:
        results = json.loads((Path(r["run_dir"]) / "results.json").read_text())
        valid.setdefault(r["overrides"][-1], []).append(
            results["metrics"]["valid"]["full"]["NDCG@10"]
        )
    means = {setting: sum(v) / 2 for setting, v in valid.items()}
    chosen = record["search"]["chosen"]["id"]
    assert chosen["overrides"] == [max(means, key=means.get)]
    assert chosen["valid"] == pytest.approx(means)
    assert record["search"]["seeds"] == [1, 2]
    finals = [r for r in record["runs"] if not r.get("search")]
    best = next(r for r in searched if r["overrides"] == chosen["overrides"] and r["seed"] == 1)
    assert next(r for r in finals if r["seed"] == 1)["run_dir"] == best["run_dir"]
    text = Path(write_report([record["path"]], tmp_path / "out")["files"][0]).read_text()
    assert "on seeds 1, 2 (each setting scored by its mean over them)" in text


def test_search_seeds_of_a_record_written_before_several_seeds():
    assert search_seeds({"seed": 3}) == [3]
    assert search_seeds({"seeds": [3, 4]}) == [3, 4]


def test_a_cell_may_not_set_what_the_search_varies(base_file, tmp_path):
    body = {"cells": {"x": ["train.lr=0.1"]}, "search": {"train.lr": [1e-3]}}
    with pytest.raises(ConfigError, match=r"cell 'x' sets train.lr, which the search varies"):
        load_sweep(write(tmp_path, body))
    with pytest.raises(ConfigError, match=r"search.train.lr: must be a non-empty list"):
        load_sweep(write(tmp_path, {"cells": {"x": []}, "search": {"train.lr": []}}))
    with pytest.raises(ConfigError, match=r"search: must be a mapping"):
        load_sweep(write(tmp_path, {"cells": {"x": []}, "search": ["train.lr"]}))
    with pytest.raises(ConfigError, match=r"search train.lr=nope: train.lr"):
        load_sweep(write(tmp_path, {"cells": {"x": []}, "search": {"train.lr": ["nope"]}}))
    searched = {"cells": {"x": []}, "search": {"train.lr": [1e-3]}}
    for bad in ([1, 1], [], "1", [1, "2"]):
        with pytest.raises(ConfigError, match=r"search_seed: must be an integer or a list"):
            load_sweep(write(tmp_path, {**searched, "search_seed": bad}))
    with pytest.raises(ConfigError, match=r"search_seed: .* with a search"):
        load_sweep(write(tmp_path, {"cells": {"x": []}, "search_seed": 1}))


def _processes_under(home: Path) -> list[int]:
    """Processes whose environment names ``home`` (the sweep and its workers)."""
    found = []
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and str(home).encode() in (proc / "environ").read_bytes():
                found.append(int(proc.name))
        except OSError:
            continue
    return found


@pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="reads /proc")
def test_a_terminated_parallel_sweep_stops_its_workers(base_file, tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time

    home = tmp_path / "term-home"
    cfg = config.load(
        str(base_file), [f"paths.home={home}", "train.epochs=200", "train.patience=200"]
    )
    base_file.write_text(config.dump(cfg))
    path = write(tmp_path, {"name": "term", "cells": {"id": [], "gru": ["model.backbone=gru4rec"]}})
    env = {**os.environ, "RECXPLORE_HOME": str(home)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "recxplore", "sweep", str(path), "--jobs", "2", "-q"], env=env
    )
    deadline = time.time() + 120
    while time.time() < deadline and not list((home / "runs").glob("*.partial/checkpoint.pt")):
        time.sleep(0.2)
    assert list((home / "runs").glob("*.partial/checkpoint.pt")), "no run started"
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=30)
    time.sleep(1)
    assert _processes_under(home) == []


def test_a_sweep_on_a_local_ray_gives_the_runs_of_a_serial_sweep(base_file, tmp_path):
    ray = pytest.importorskip("ray")
    body = {"name": "ray", "cells": {"id": [], "broken": ["data.name=atomic:nowhere"]}}
    serial = run_sweep(
        load_sweep(write(tmp_path, body), [f"paths.home={tmp_path / 'serial'}"]), progress=False
    )
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        on_ray = run_sweep(load_sweep(write(tmp_path, body)), progress=False, ray="local")
    finally:
        ray.shutdown()
    status = [(r["cell"], r["seed"], r["status"]) for r in on_ray["runs"]]
    assert status == [(r["cell"], r["seed"], r["status"]) for r in serial["runs"]]
    assert [s for *_, s in status].count("failed") == 2
    assert "atomic:nowhere" in next(r for r in on_ray["runs"] if r["status"] == "failed")["error"]
    for a, b in zip(on_ray["runs"], serial["runs"]):
        if a["status"] == "ok":
            metrics = [
                json.loads((Path(r["run_dir"]) / "results.json").read_text())["metrics"]
                for r in (a, b)
            ]
            assert metrics[0] == metrics[1]  # the same runs, trained by Ray workers
    again = run_sweep(load_sweep(write(tmp_path, body)), progress=False)  # resumable: cached
    assert [r.get("run_dir") for r in again["runs"]] == [r.get("run_dir") for r in on_ray["runs"]]


def test_cells_runs_part_of_a_sweep_with_the_whole_files_runs(base_file, tmp_path):
    body = {
        "name": "part",
        "baseline": "id",
        "cells": {"id": [], "gru": ["model.backbone=gru4rec"], "bce": ["train.loss=bce"]},
        "search": {"train.lr": [1.0e-3, 4.0e-3]},
    }
    sweep = load_sweep(write(tmp_path, body))
    part = run_sweep(only_cells(sweep, ["bce", "gru"]), progress=False)
    assert {r["cell"] for r in part["runs"]} == {"gru", "bce"}
    assert part["baseline"] is None  # id was not run: nothing to compare against
    # a later call for the other cell keeps what the first recorded, baseline included
    rest = run_sweep(only_cells(sweep, ["id"]), progress=False)
    assert {r["cell"] for r in rest["runs"]} == {"id", "gru", "bce"}
    assert set(rest["search"]["chosen"]) == {"id", "gru", "bce"}
    assert rest["baseline"] == "id"
    on_disk = json.loads((Path(rest["path"]) / "sweep.json").read_text(encoding="utf-8"))
    assert sorted(r["run_dir"] for r in on_disk["runs"]) == sorted(
        r["run_dir"] for r in rest["runs"]
    )
    # another search: the earlier runs are not this sweep's, and the record drops them
    narrower = load_sweep(write(tmp_path, {**body, "search": {"train.lr": [1.0e-3]}}))
    alone = run_sweep(only_cells(narrower, ["id"]), progress=False)
    assert {r["cell"] for r in alone["runs"]} == {"id"}
    whole = run_sweep(sweep, progress=False)
    # the part's runs (search and seeds) are the whole sweep's, from the cache
    assert {r["run_dir"] for r in part["runs"]} == {
        r["run_dir"] for r in whole["runs"] if r["cell"] != "id"
    }
    assert only_cells(sweep, ["id"]).baseline == "id"
    with pytest.raises(ConfigError, match=r"--cells: 'nope' not a cell; cells are id, gru, bce"):
        only_cells(sweep, ["id", "nope"])
