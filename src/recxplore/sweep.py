"""``recxplore sweep FILE``: many cached runs over several seeds, resumable, failures recorded.

A sweep file is YAML:

```yaml
name: adapters                 # folder <home>/sweeps/<name>/ (default: the file's stem)
config: ../default.yaml        # optional base config, relative to this file
set: [data.name=ml-100k]       # overrides for every cell
seeds: [42, 43, 44]
baseline: id                   # the cell reports compare against (optional)
cells:                         # label -> overrides ...
  id: [adapt.fusion=id]
  moe: [adapt.fusion=replace, adapt.adapter=moe]
grid:                          # ... and/or a cartesian product, labelled by its values
  adapt.adapter: [linear, moe]
  adapt.fusion: [replace, concat]
modules:                       # ... and/or the paper's method: vary one module at a time with
  pooling: {extract.pooling: [mean, last]}   # the others at the base, pick each module's
  adapter: {adapt.adapter: [linear, moe]}    # winner on validation, then run them together
```

Every run goes through ``train_run``'s cache, so a rerun never retrains a finished run; a run
that fails is recorded in ``sweep.json`` with its error and the sweep goes on.
"""

from __future__ import annotations

import itertools
import logging
import statistics
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

import yaml

from recxplore import config as config_mod
from recxplore.cache import home_dir, write_json_atomic
from recxplore.errors import ConfigError

log = logging.getLogger(__name__)

KEYS = ("name", "config", "set", "seeds", "baseline", "cells", "grid", "modules")
ASSEMBLED = "assembled"


@dataclass
class Sweep:
    name: str
    path: Path
    base: Optional[Path]
    overrides: list[str]
    seeds: list[int]
    baseline: Optional[str]
    cells: dict[str, list[str]] = field(default_factory=dict)
    modules: dict[str, dict[str, list[Any]]] = field(default_factory=dict)

    def config(self, overrides: list[str], seed: int) -> config_mod.Config:
        return config_mod.load(self.base, self.overrides + overrides + [f"train.seed={seed}"])


def _fmt(value: Any) -> str:
    return yaml.safe_dump(value, default_flow_style=True).strip().removesuffix("...").strip()


def load_sweep(path: str | Path) -> Sweep:
    """Read and validate a sweep file; every cell's config is checked before anything runs."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError([f"sweep file {path}: not found"])
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as err:
        raise ConfigError([f"sweep file {path}: not valid YAML ({err})"]) from None
    problems = [f"{path}: {k}: unknown key; valid keys are {', '.join(KEYS)}"
                for k in raw if k not in KEYS] if isinstance(raw, dict) else \
        [f"{path}: must be a mapping with keys {', '.join(KEYS)}"]
    if problems:
        raise ConfigError(problems)
    base = (path.parent / raw["config"]).resolve() if raw.get("config") else None
    seeds = raw.get("seeds", [42])
    if not (isinstance(seeds, list) and seeds and all(isinstance(s, int) for s in seeds)):
        problems.append(f"{path}: seeds: must be a non-empty list of integers; got {seeds!r}")
    cells: dict[str, list[str]] = {}
    for label, overrides in (raw.get("cells") or {}).items():
        if not isinstance(overrides, list):
            problems.append(f"{path}: cells.{label}: must be a list of key=value overrides")
            continue
        cells[str(label)] = [str(o) for o in overrides]
    grid = raw.get("grid") or {}
    if grid:
        keys = list(grid)
        for values in itertools.product(*(grid[k] for k in keys)):
            label = "/".join(_fmt(v) for v in values)
            cells[label] = [f"{k}={_fmt(v)}" for k, v in zip(keys, values)]
    modules = raw.get("modules") or {}
    for module, choice in modules.items():
        if not (isinstance(choice, dict) and len(choice) == 1):
            problems.append(f"{path}: modules.{module}: must map one key to its values, e.g. "
                            f"{{extract.pooling: [mean, last]}}")
            continue
        (key, values), = choice.items()
        for v in values:
            cells[f"{module}={_fmt(v)}"] = [f"{key}={_fmt(v)}"]
    if not cells:
        problems.append(f"{path}: no cells: give cells, grid or modules")
    sweep = Sweep(name=str(raw.get("name") or path.stem), path=path, base=base,
                  overrides=[str(o) for o in raw.get("set") or []], seeds=seeds if not problems
                  else [42], baseline=raw.get("baseline"), cells=cells, modules=modules)
    if sweep.baseline is not None and sweep.baseline not in cells:
        problems.append(f"{path}: baseline: {sweep.baseline!r} is not a cell; cells are "
                        f"{', '.join(cells)}")
    for label, overrides in cells.items():
        try:
            sweep.config(overrides, sweep.seeds[0])
        except ConfigError as err:
            problems += [f"{path}: cell {label!r}: {p}" for p in err.problems]
    if problems:
        raise ConfigError(problems)
    return sweep


def sweep_dir(sweep: Sweep, home: Optional[str] = None) -> Path:
    return home_dir(home) / "sweeps" / sweep.name


def _select_score(results: dict[str, Any]) -> float:
    metric = results["config"]["train"]["select_metric"]
    return results["metrics"]["valid"]["full"][metric]


def run_sweep(sweep: Sweep, progress: bool = True,
              train: Optional[Callable[..., dict[str, Any]]] = None) -> dict[str, Any]:
    """Run every (cell, seed); return (and write to ``sweep.json``) what happened to each."""
    if train is None:
        from recxplore.train.run import train_run as train
    cfg0 = sweep.config([], sweep.seeds[0])
    folder = sweep_dir(sweep, cfg0.paths.home)
    folder.mkdir(parents=True, exist_ok=True)
    record: dict[str, Any] = {"name": sweep.name, "file": str(sweep.path), "seeds": sweep.seeds,
                              "baseline": sweep.baseline, "runs": [], "winners": {}}

    def run_cell(label: str, overrides: list[str]) -> list[dict[str, Any]]:
        done = []
        for seed in sweep.seeds:
            entry: dict[str, Any] = {"cell": label, "seed": seed, "overrides": overrides}
            try:
                results = train(sweep.config(overrides, seed), progress=progress)
                entry.update(status="ok", run_dir=results["run_dir"])
                done.append(results)
            except Exception as err:  # noqa: BLE001 -- one failed run must not stop the sweep
                log.error("sweep %s: cell %s seed %d failed: %s", sweep.name, label, seed, err)
                entry.update(status="failed", error=f"{type(err).__name__}: {err}",
                             traceback=traceback.format_exc(limit=5))
            record["runs"].append(entry)
            write_json_atomic(folder / "sweep.json", record)
        return done

    finished: dict[str, list[dict[str, Any]]] = {}
    for label, overrides in sweep.cells.items():
        finished[label] = run_cell(label, overrides)
    if sweep.modules:
        winners = []
        for module, choice in sweep.modules.items():
            (key, values), = choice.items()
            scored = [(statistics.mean(_select_score(r) for r in finished[f"{module}={_fmt(v)}"]),
                       v) for v in values if finished[f"{module}={_fmt(v)}"]]
            if scored:
                best = max(scored, key=lambda s: s[0])[1]
                record["winners"][module] = {"key": key, "value": best}
                winners.append(f"{key}={_fmt(best)}")
        record["assembled"] = winners
        run_cell(ASSEMBLED, winners)
    write_json_atomic(folder / "sweep.json", record)
    record["path"] = str(folder)
    return record
