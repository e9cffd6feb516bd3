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
search:                        # optional: the same search for every cell, baselines included
  train.lr: [1.0e-3, 4.0e-3]
  model.dropout: [0.2, 0.5]
search_seed: 42                # the seed the search runs on (default: the first seed), or a
                               # list such as [42, 43]: each setting scored by its mean over them
```

With ``search``, every cell first trains each setting of the search grid on the search seed (or
seeds); the setting with the best validation ``train.select_metric`` (its mean over the search
seeds) is the cell's, and all its seeds run with it (a search seed's run is the search's own,
from the cache). Several search seeds cost more runs and make the choice less a matter of one
seed's luck where settings score close. Search runs are in ``sweep.json`` marked
``"search": true`` and stay out of report tables; the report lists each cell's chosen setting
and the budget. A cell may not set a key the search varies.

Every run goes through the pipeline's cache, so a rerun never retrains a finished run; a run
that fails is recorded in ``sweep.json`` with its error and the sweep goes on. Overrides given
on the command line (``recxplore sweep FILE train.device=cuda``) apply to every cell after
``set``. ``--jobs N`` trains N runs at once in separate processes (each with ``train.threads``
threads: on a CPU keep N x threads within the cores; on one GPU several small runs share it);
runs that several cells or sweeps need, such as the ID-only run behind ``align``, are built
once under a lock and reused. ``--cells A,B`` runs only those cells of the file, with the same
keys and search as the whole file (so their runs are the whole sweep's); ``sweep.json`` keeps
what earlier calls recorded for the file's other cells (when its seeds and search are the same),
so a report of the folder holds every cell run so far.
"""

from __future__ import annotations

import itertools
import json
import logging
import signal
import statistics
import threading
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Optional, cast

import yaml

from recxplore import config as config_mod
from recxplore.cache import home_dir, write_json_atomic
from recxplore.errors import ConfigError
from recxplore.local_runs import ProcessRuns, SerialRuns

log = logging.getLogger(__name__)

KEYS = (
    "name",
    "config",
    "set",
    "seeds",
    "baseline",
    "cells",
    "grid",
    "modules",
    "search",
    "search_seed",
)
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
    search: dict[str, list[Any]] = field(default_factory=dict)
    search_seeds: list[int] = field(default_factory=list)
    # with --cells: the sweep as the file declares it, whose other cells sweep.json keeps
    whole: Optional[Sweep] = None

    def config(self, overrides: list[str], seed: int) -> config_mod.Config:
        return config_mod.load(self.base, self.overrides + overrides + [f"train.seed={seed}"])

    def candidates(self) -> list[list[str]]:
        """The search grid's settings as override lists (one empty setting without a search)."""
        keys = list(self.search)
        return [
            [f"{k}={_fmt(v)}" for k, v in zip(keys, values)]
            for values in itertools.product(*(self.search[k] for k in keys))
        ]


def _fmt(value: Any) -> str:
    return yaml.safe_dump(value, default_flow_style=True).strip().removesuffix("...").strip()


def load_sweep(path: str | Path, extra: Optional[list[str]] = None) -> Sweep:
    """Read and validate a sweep file; every cell's config is checked before anything runs.
    ``extra`` overrides apply to every cell, after the file's ``set``."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError([f"sweep file {path}: not found"])
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (yaml.YAMLError, UnicodeDecodeError) as err:
        raise ConfigError([f"sweep file {path}: not valid UTF-8 YAML ({err})"]) from None
    problems = (
        [
            f"{path}: {k}: unknown key; valid keys are {', '.join(KEYS)}"
            for k in raw
            if k not in KEYS
        ]
        if isinstance(raw, dict)
        else [f"{path}: must be a mapping with keys {', '.join(KEYS)}"]
    )
    if problems:
        raise ConfigError(problems)
    for key, kind in (
        ("cells", dict),
        ("grid", dict),
        ("modules", dict),
        ("search", dict),
        ("set", list),
    ):
        if raw.get(key) is not None and not isinstance(raw[key], kind):
            problems.append(
                f"{path}: {key}: must be a {'mapping' if kind is dict else 'list'}; "
                f"got {raw[key]!r}"
            )
    for key in ("config", "name", "baseline"):
        if raw.get(key) is not None and not isinstance(raw[key], str):
            problems.append(f"{path}: {key}: must be a string; got {raw[key]!r}")
    for key in ("grid", "search"):
        problems += [
            f"{path}: {key}.{k}: must be a non-empty list of values; got {v!r}"
            for k, v in (raw.get(key) if isinstance(raw.get(key), dict) else {}).items()
            if not (isinstance(v, list) and v)
        ]
    search_seed = raw.get("search_seed")
    search_seeds = [search_seed] if isinstance(search_seed, int) else search_seed
    if search_seed is not None and not (
        raw.get("search")
        and isinstance(search_seeds, list)
        and search_seeds
        and all(isinstance(s, int) for s in search_seeds)
        and len(set(search_seeds)) == len(search_seeds)
    ):
        problems.append(
            f"{path}: search_seed: must be an integer or a list of distinct integers, with a "
            f"search; got {search_seed!r}"
        )
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
            problems.append(
                f"{path}: modules.{module}: must map one key to its values, e.g. "
                f"{{extract.pooling: [mean, last]}}"
            )
            continue
        ((key, values),) = choice.items()
        if not isinstance(values, list):
            problems.append(f"{path}: modules.{module}.{key}: must be a list of values")
            continue
        for v in values:
            cells[f"{module}={_fmt(v)}"] = [f"{key}={_fmt(v)}"]
    if not cells:
        problems.append(f"{path}: no cells: give cells, grid or modules")
    sweep = Sweep(
        name=str(raw.get("name") or path.stem),
        path=path,
        base=base,
        overrides=[str(o) for o in raw.get("set") or []] + list(extra or []),
        seeds=seeds if not problems else [42],
        baseline=raw.get("baseline"),
        cells=cells,
        modules=modules,
        search={str(k): v for k, v in (raw.get("search") or {}).items()},
    )
    if sweep.search:
        sweep.search_seeds = search_seeds or sweep.seeds[:1]  # checked above
    for label, overrides in cells.items():
        clash = sorted({o.split("=", 1)[0] for o in overrides} & set(sweep.search))
        if clash:
            problems.append(
                f"{path}: cell {label!r} sets {', '.join(clash)}, which the search varies; "
                f"drop it from the cell or from search"
            )
    if sweep.baseline is not None and sweep.baseline not in cells:
        problems.append(
            f"{path}: baseline: {sweep.baseline!r} is not a cell; cells are {', '.join(cells)}"
        )
    for label, overrides in cells.items():
        try:
            sweep.config(overrides, sweep.seeds[0])
        except ConfigError as err:
            problems += [f"{path}: cell {label!r}: {p}" for p in err.problems]
    if sweep.search and not problems:
        for setting in sweep.candidates():
            try:
                sweep.config(setting, sweep.seeds[0])
            except ConfigError as err:
                problems += [f"{path}: search {', '.join(setting)}: {p}" for p in err.problems]
    if problems:
        raise ConfigError(problems)
    return sweep


def only_cells(sweep: Sweep, labels: list[str]) -> Sweep:
    """The sweep restricted to the cells ``labels`` (``--cells``), in the file's order."""
    if sweep.modules:
        raise ConfigError(
            [f"{sweep.path}: --cells: not for a sweep with modules (its winners need every cell)"]
        )
    unknown = [label for label in labels if label not in sweep.cells]
    if unknown:
        raise ConfigError(
            [
                f"{sweep.path}: --cells: {', '.join(map(repr, unknown))} not a cell; "
                f"cells are {', '.join(sweep.cells)}"
            ]
        )
    kept = {label: o for label, o in sweep.cells.items() if label in labels}
    baseline = sweep.baseline if sweep.baseline in kept else None
    return replace(sweep, cells=kept, baseline=baseline, whole=sweep)


def _earlier_record(sweep: Sweep, folder: Path) -> dict[str, Any]:
    """What earlier ``--cells`` calls recorded for the file's cells this call does not run:
    their runs and chosen settings, if ``sweep.json`` has the same seeds and search."""
    path = folder / "sweep.json"
    if sweep.whole is None or not path.is_file():
        return {"runs": [], "chosen": {}}
    try:
        earlier = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as err:
        log.warning(
            "sweep %s: %s unreadable (%s); it will hold only this call's cells",
            sweep.name,
            path,
            err,
        )
        return {"runs": [], "chosen": {}}
    search = earlier.get("search", {})
    if (
        earlier.get("seeds") != sweep.seeds
        or search.get("space", {}) != sweep.search
        or search_seeds(search) != sweep.search_seeds
    ):
        log.warning(
            "sweep %s: %s was written with other seeds or another search; it will hold only "
            "this call's cells",
            sweep.name,
            path,
        )
        return {"runs": [], "chosen": {}}
    others = set(sweep.whole.cells) - set(sweep.cells)
    return {
        "runs": [r for r in earlier.get("runs", []) if r.get("cell") in others],
        "chosen": {c: v for c, v in search.get("chosen", {}).items() if c in others},
    }


def search_seeds(search: Mapping[str, Any]) -> list[int]:
    """The seeds a recorded search ran on (``sweep.json`` before several seeds: ``seed``)."""
    return list(search.get("seeds") or ([search["seed"]] if "seed" in search else []))


def sweep_dir(sweep: Sweep, home: Optional[str] = None) -> Path:
    return home_dir(home) / "sweeps" / sweep.name


def _select_score(results: dict[str, Any]) -> float:
    metric = results["config"]["train"]["select_metric"]
    return results["metrics"]["valid"]["full"][metric]


def _train_one(
    sweep: Sweep,
    overrides: list[str],
    seed: int,
    progress: bool,
    train: Optional[Callable[..., Mapping[str, Any]]] = None,
) -> dict[str, Any]:
    """One (cell, seed) as an entry of ``sweep.json`` plus its results (None when it failed).
    Module-level so that worker processes can run it."""
    if train is None:
        from recxplore.pipeline import train as train_one

        train = train_one
    entry: dict[str, Any] = {"overrides": overrides}
    try:
        results = train(sweep.config(overrides, seed), progress=progress)
        entry.update(status="ok", run_dir=results["run_dir"])
        return {"entry": entry, "results": results}
    except Exception as err:  # noqa: BLE001 -- one failed run must not stop the sweep
        entry.update(
            status="failed",
            error=f"{type(err).__name__}: {err}",
            traceback=traceback.format_exc(limit=5),
        )
        return {"entry": entry, "results": None}


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def run_sweep(
    sweep: Sweep,
    progress: bool = True,
    train: Optional[Callable[..., Mapping[str, Any]]] = None,
    jobs: int = 1,
    ray: Optional[str] = None,
) -> dict[str, Any]:
    """Run every (cell, seed), ``jobs`` at a time, or as Ray tasks (``ray``: a cluster's
    address, or ``local`` for a Ray instance on this machine); return (and write to
    ``sweep.json``) what happened to each."""
    if jobs < 1:
        raise ConfigError([f"sweep --jobs: must be at least 1; got {jobs}"])
    cfg0 = sweep.config([], sweep.seeds[0])
    folder = sweep_dir(sweep, cfg0.paths.home)
    folder.mkdir(parents=True, exist_ok=True)
    earlier = _earlier_record(sweep, folder)
    recorded = set(sweep.cells) | {r["cell"] for r in earlier["runs"]}
    file_baseline = sweep.baseline if sweep.whole is None else sweep.whole.baseline
    record: dict[str, Any] = {
        "name": sweep.name,
        "file": str(sweep.path),
        "seeds": sweep.seeds,
        "baseline": file_baseline if file_baseline in recorded else None,
        "runs": earlier["runs"],
        "winners": {},
    }
    if sweep.search:
        record["search"] = {
            "space": sweep.search,
            "seeds": sweep.search_seeds,
            "settings": len(sweep.candidates()),
            "chosen": earlier["chosen"],
        }
    pool: Any
    if ray is not None:
        from recxplore.ray_runs import RayRuns

        pool = RayRuns(None if ray == "local" else ray)
    else:
        pool = ProcessRuns(jobs) if jobs > 1 else SerialRuns()
    bars = progress and isinstance(pool, SerialRuns)  # workers show no bars: a line a run
    # a terminated sweep (kill, a job scheduler) stops like an interrupted one, workers included
    main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _interrupt) if main else None

    def choose(label: str, scores: dict[tuple[int, int], Optional[float]]) -> Optional[list[str]]:
        """The cell's setting with the best mean validation score over the search seeds (a
        setting with a failed run is out; ties: the first); None when every setting failed."""
        settings, seeds = sweep.candidates(), sweep.search_seeds
        found = [
            None
            if any(scores[i, k] is None for k in range(len(seeds)))
            else statistics.mean(cast(float, scores[i, k]) for k in range(len(seeds)))
            for i in range(len(settings))
        ]
        scored = [(v, i) for i, v in enumerate(found) if v is not None]
        if not scored:
            return None
        best = settings[max(scored, key=lambda vi: vi[0])[1]]
        record["search"]["chosen"][label] = {
            "overrides": best,
            "valid": {", ".join(st): v for st, v in zip(settings, found)},
        }
        return best

    def run_cells(cells: dict[str, list[str]]) -> dict[str, list[dict[str, Any]]]:
        """Every cell's search runs, then its seeds with the setting its search chose, as soon
        as that cell's search has ended (no worker waits on another cell's search). Free workers
        take search runs first, then seeds seed-major, so a sweep stopped part way has every
        cell on its first seed; ``sweep.json`` lists the runs in that order, as they end."""
        labels = list(cells)
        settings, search_seeds_ = sweep.candidates(), sweep.search_seeds
        # (order, label, overrides, seed, (setting, search seed) or None for a seed run)
        Job = tuple[tuple[int, ...], str, list[str], int, Optional[tuple[int, int]]]
        ready: list[Job] = []

        def queue_seeds(c: int, overrides: list[str]) -> None:
            for k, seed in enumerate(sweep.seeds):
                ready.append(((1, k, c), labels[c], overrides, seed, None))

        for c, label in enumerate(labels):
            if not sweep.search:
                queue_seeds(c, cells[label])
                continue
            for i, setting in enumerate(settings):
                for k, seed in enumerate(search_seeds_):
                    ready.append(((0, c, i, k), label, cells[label] + setting, seed, (i, k)))
        earlier, ended = list(record["runs"]), {}
        scores: dict[str, dict[tuple[int, int], Optional[float]]] = {lb: {} for lb in labels}
        done: dict[str, list[dict[str, Any]]] = {lb: [] for lb in labels}
        running: dict[Any, Job] = {}
        while ready or running:
            ready.sort(key=lambda job: job[0])
            while ready and len(running) < pool.width:
                job = ready.pop(0)
                running[pool.submit(_train_one, sweep, job[2], job[3], bars, train)] = job
            handle, outcome = pool.wait(list(running))
            order, label, _, seed, searched = running.pop(handle)
            entry = {"cell": label, "seed": seed, **({"search": True} if searched else {})}
            entry.update(outcome["entry"])
            what = "search run" if searched else "seed"
            if outcome["results"] is None:
                log.error(
                    "sweep %s: cell %s %s %d failed: %s",
                    sweep.name,
                    label,
                    what,
                    seed,
                    entry["error"],
                )
            else:
                log.info("sweep %s: cell %s %s %d finished", sweep.name, label, what, seed)
            ended[order] = entry
            record["runs"] = earlier + [ended[o] for o in sorted(ended)]
            write_json_atomic(folder / "sweep.json", record)
            results = outcome["results"]
            if searched is None:
                if results is not None:
                    done[label].append(results)
                continue
            scores[label][searched] = None if results is None else _select_score(results)
            if len(scores[label]) == len(settings) * len(search_seeds_):
                best = choose(label, scores[label])
                if best is not None:  # a cell whose every setting failed has no seed runs
                    queue_seeds(labels.index(label), cells[label] + best)
        if sweep.search:  # chosen settings listed in the file's order, whenever they ended
            chosen = record["search"]["chosen"]
            record["search"]["chosen"] = {
                **{k: v for k, v in chosen.items() if k not in cells},
                **{k: chosen[k] for k in labels if k in chosen},
            }
        for runs in done.values():
            runs.sort(key=lambda r: sweep.seeds.index(r["seed"]))
        return done

    stopped = False
    try:
        finished = run_cells(sweep.cells)
        if sweep.modules:
            winners = []
            for module, choice in sweep.modules.items():
                ((key, values),) = choice.items()
                # values may be lists; a cell whose search all failed has no runs
                runs = [finished.get(f"{module}={_fmt(v)}", []) for v in values]
                scored = [
                    (statistics.mean(_select_score(r) for r in done), v)
                    for v, done in zip(values, runs)
                    if done
                ]
                if scored:
                    best = max(scored, key=lambda s: s[0])[1]
                    record["winners"][module] = {"key": key, "value": best}
                    winners.append(f"{key}={_fmt(best)}")
            record["assembled"] = winners
            run_cells({ASSEMBLED: winners})
        write_json_atomic(folder / "sweep.json", record)
        record["path"] = str(folder)
        return record
    except BaseException:
        stopped = True
        raise
    finally:
        if main:
            signal.signal(signal.SIGTERM, previous)
        pool.shutdown(stopped)
