"""``recxplore report``: tables (Markdown, CSV) and a figure from finished runs.

Inputs are sweep folders (their ``sweep.json`` names each run's cell) and/or run folders (then a
cell is labelled by the config values that differ between the runs given, seeds aside). Per cell:
mean ± std over seeds of the test metrics under full ranking and 100 sampled negatives, the best
mean per column in bold; against a baseline cell, the relative change of NDCG@10 with a 95%
interval from a two-level bootstrap and a seed-level p-value (``eval.compare``), from each run's
``test_ranks.csv``.
"""

from __future__ import annotations

import csv
import json
import statistics
import textwrap
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import numpy as np

from recxplore.config import neutral_keys
from recxplore.errors import RecxploreError
from recxplore.eval.compare import RESAMPLES, Comparison, compare
from recxplore.registry import FUSIONS
from recxplore.report_groups import (
    curve_figure,
    group_figure,
    group_rows,
    group_tables,
    per_user_ndcg,
    regime_baselines,
)
from recxplore.sweep import search_seeds
from recxplore.tables import COLUMNS as METRICS
from recxplore.tables import markdown
from recxplore.train.run import UPSTREAM_ONLY

PROTOCOLS = ("full", "sampled")
# Settings that cannot tell cells apart: seeds, and what cannot change a result.
IGNORED = {("train", "seed")} | neutral_keys()


# What a run without features never reads (its key leaves them out too, see train.run).
UNUSED_WITHOUT_FEATURES = (*UPSTREAM_ONLY, "text", "extract", "adapt")


class ReportError(RecxploreError):
    """Folders that hold no finished runs."""


def _results(run_dir: Path) -> dict[str, Any]:
    path = Path(run_dir) / "results.json"
    if not path.is_file():
        raise ReportError(
            f"{run_dir}: no results.json (not a finished run folder); finish the "
            f"run with the same `recxplore train` command or leave it out"
        )
    results = json.loads(path.read_text(encoding="utf-8"))
    results["run_dir"] = str(run_dir)  # where it is now, not where it was trained
    return results


def _flat(cfg: dict[str, Any]) -> dict[str, Any]:
    fusion = cfg["adapt"]["fusion"]
    id_only = fusion in FUSIONS and "features" not in FUSIONS.entry(fusion).requires
    return {
        f"{s}.{k}": v
        for s, sec in cfg.items()
        for k, v in sec.items()
        if (s, k) not in IGNORED
        and not (id_only and s in UNUSED_WITHOUT_FEATURES and k != "fusion")
    }


@dataclass
class Collected:
    cells: dict[str, list[dict[str, Any]]]  # label -> results of its seeds, in order met
    baseline: Optional[str]  # a sweep's baseline, if any
    assembled: list[list[str]]  # what each one-module-at-a-time sweep assembled
    failed: list[dict[str, Any]]  # the sweeps' runs that failed or did not finish
    searches: list[dict[str, Any]] = field(default_factory=list)  # the sweeps' searches


def _add_seed(cell: list[dict[str, Any]], label: str, results: dict[str, Any]) -> None:
    """Add a run to its cell once: sweeps that share a cell (a baseline both run) list the same
    run folder, and a seed met twice in one cell with another run would pair the wrong runs."""
    for other in cell:
        if other["seed"] != results["seed"]:
            continue
        if Path(other["run_dir"]).resolve() == Path(results["run_dir"]).resolve():
            return
        raise ReportError(
            f"cell {label!r}: seed {results['seed']} has two different runs "
            f"({other['run_dir']} and {results['run_dir']}); the sweeps given name different "
            f"settings by one cell name: report them apart or rename the cell in one of them"
        )
    cell.append(results)


def collect(paths: list[Path]) -> Collected:
    """The finished runs of sweep and run folders, by cell (a sweep's search runs left out)."""
    cells: dict[str, list[dict[str, Any]]] = defaultdict(list)
    loose: list[dict[str, Any]] = []
    failed: list[dict[str, Any]] = []
    baseline = None
    assembled: list[list[str]] = []
    searches: list[dict[str, Any]] = []
    for path in map(Path, paths):
        if (path / "sweep.json").is_file():
            record = json.loads((path / "sweep.json").read_text(encoding="utf-8"))
            baseline = baseline or record.get("baseline")
            if record.get("assembled"):
                assembled.append(record["assembled"])
            if record.get("search"):
                searches.append(record["search"])
            for run in record["runs"]:
                if run.get("search"):
                    if run["status"] != "ok":
                        failed.append(run)
                elif run["status"] == "ok":
                    _add_seed(cells[run["cell"]], run["cell"], _results(Path(run["run_dir"])))
                else:
                    failed.append(run)
        else:
            loose.append(_results(path))
    if loose:
        flats = [_flat(r["config"]) for r in loose]
        keys = list(dict.fromkeys(k for f in flats for k in f))
        # a setting labels cells when it differs among the runs that use it
        varying = [k for k in keys if len({json.dumps(f[k]) for f in flats if k in f}) > 1]
        for r, f in zip(loose, flats):
            label = ", ".join(f"{k}={f[k]}" for k in varying if k in f) or r["dataset"]
            cells[label].append(r)
    if not cells:
        raise ReportError(f"no finished runs in {', '.join(map(str, paths))}")
    return Collected(dict(cells), baseline, assembled, failed, searches)


def against_baseline(
    cell: list[dict[str, Any]], base: list[dict[str, Any]], protocol: str
) -> Optional[Comparison]:
    """The cell's NDCG@10 against the baseline's, paired by seed and user (seeds both have)."""
    by_seed = {r["seed"]: r["run_dir"] for r in base}
    xs, ys = [], []
    for r in cell:
        if r["seed"] not in by_seed:
            continue
        x, y = per_user_ndcg(r["run_dir"], protocol), per_user_ndcg(by_seed[r["seed"]], protocol)
        common = sorted(set(x) & set(y))
        if common:
            xs.append(np.array([x[u] for u in common]))
            ys.append(np.array([y[u] for u in common]))
    return compare(xs, ys) if xs else None


def summarise(
    cells: dict[str, list[dict[str, Any]]],
    baseline: Optional[str],
    bases: Optional[dict[str, Optional[str]]] = None,
) -> list[dict[str, Any]]:
    """Mean and std over seeds per cell; with a baseline, each cell's change against the
    baseline of its own regime (``bases``, by default the baseline for every cell)."""
    bases = bases or {label: baseline for label in cells}
    rows = []
    for label, runs in cells.items():
        base_label = bases.get(label)
        row: dict[str, Any] = {"cell": label, "seeds": len(runs)}
        for p in PROTOCOLS:
            for m in METRICS:
                values = [r["metrics"]["test"][p][m] for r in runs]
                row[f"{p} {m}"] = statistics.mean(values)
                row[f"{p} {m} std"] = statistics.stdev(values) if len(values) > 1 else 0.0
        if base_label and base_label in cells and label != base_label:
            row["baseline"] = base_label
            for p in PROTOCOLS:
                base_runs = cells[base_label]
                base = statistics.mean(r["metrics"]["test"][p]["NDCG@10"] for r in base_runs)
                row[f"{p} NDCG@10 change"] = row[f"{p} NDCG@10"] / base - 1 if base else None
                found = against_baseline(runs, base_runs, p)
                if found is not None:
                    row[f"{p} NDCG@10 low"], row[f"{p} NDCG@10 high"] = found.low, found.high
                    row[f"{p} NDCG@10 p"] = found.p
                    row[f"{p} NDCG@10 paired seeds"] = found.seeds
        rows.append(row)
    return rows


def _p_text(pv: float) -> str:
    # scipy returns 0.0 once a p-value underflows a double; it is tiny, not zero
    return "< 1e-300" if pv < 1e-300 else f"{pv:.3g}"


def _change_text(row: dict[str, Any], protocol: str) -> str:
    change = row.get(f"{protocol} NDCG@10 change")
    if change is None:
        return ""
    low, high = row.get(f"{protocol} NDCG@10 low"), row.get(f"{protocol} NDCG@10 high")
    if low is None or high is None:
        return f"{change:+.1%}"
    verdict = " no detectable difference" if low <= 0.0 <= high else ""
    return f"{change:+.1%} [{low:+.1%}, {high:+.1%}]{verdict}"


def summary_table(rows: list[dict[str, Any]], baseline: Optional[str]) -> str:
    cols = [f"{p} {m}" for p in PROTOCOLS for m in METRICS]
    best = {c: max(r[c] for r in rows) for c in cols}
    head = ["cell", "seeds"] + cols
    if baseline:
        head += ["Δ full NDCG@10 [95% CI]", "p", "Δ sampled NDCG@10 [95% CI]", "p "]
    out = []
    serving = {baseline} | {r.get("baseline") for r in rows}
    for r in rows:
        cells = [r["cell"] + (" (baseline)" if r["cell"] in serving else ""), str(r["seeds"])]
        for c in cols:
            text = f"{r[c]:.4f} ± {r[c + ' std']:.4f}" if r["seeds"] > 1 else f"{r[c]:.4f}"
            cells.append(f"**{text}**" if r[c] == best[c] else text)
        if baseline:
            for p in PROTOCOLS:
                cells.append(_change_text(r, p))
                pv = r.get(f"{p} NDCG@10 p")
                cells.append(_p_text(pv) if pv is not None else "")
        out.append(cells)
    return markdown(head, out)


def figure(rows: list[dict[str, Any]], path: Path, title: str, baseline: Optional[str]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    width = max(6, 0.6 * len(rows) + 3) * 2 / 1.5
    # a long title wraps within the figure rather than running off its edges
    title = textwrap.fill(title, width=int(width * 9))
    fig, axes = plt.subplots(1, 2, figsize=(width, 3.6 + 0.25 * title.count("\n")))
    labels = [r["cell"] for r in rows]
    for ax, p in zip(axes, PROTOCOLS):
        colours = ["tab:gray" if lab == baseline else "tab:blue" for lab in labels]
        ax.bar(
            range(len(rows)),
            [r[f"{p} NDCG@10"] for r in rows],
            yerr=[r[f"{p} NDCG@10 std"] for r in rows],
            color=colours,
            capsize=3,
        )
        ax.set_xticks(range(len(rows)), labels, rotation=45, ha="right", fontsize=8)
        ax.set_title(f"test NDCG@10, {p} ranking")
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _selection(cells: dict[str, list[dict[str, Any]]], assembled: list[list[str]]) -> list[str]:
    """For a sweep run one module at a time: the winners validation chose, beside every cell's
    validation score (test scores can rank the cells otherwise)."""
    if not assembled:
        return []
    scores = []
    for label, runs in cells.items():
        metric = runs[0]["config"]["train"]["select_metric"]
        mean = statistics.mean(r["metrics"]["valid"]["full"][metric] for r in runs)
        scores.append(f"{label} {mean:.4f}")
    lines = []
    for overrides in assembled:
        lines += [
            f"Chosen on validation {metric} (mean over seeds) and run together as "
            f"`assembled`: {', '.join(overrides)}. Validation scores: {'; '.join(scores)}.",
            "",
        ]
    return lines


def _seeds_phrase(seeds: list[int]) -> str:
    if len(seeds) == 1:
        return f"seed {seeds[0]}"
    return f"seeds {', '.join(map(str, seeds))} (each setting scored by its mean over them)"


def _search(searches: list[dict[str, Any]], metric: str) -> list[str]:
    """Each cell's setting from its sweep's search, beside every setting's validation score."""
    lines = []
    for search in searches:
        space = "; ".join(f"{k} in {v}" for k, v in search["space"].items())
        lines += [
            f"Search: every cell trained each of the {search['settings']} settings of "
            f"{space} on {_seeds_phrase(search_seeds(search))}, and ran its seeds with the "
            f"setting of best validation {metric}.",
            "",
        ]
        rows = [
            [
                label,
                ", ".join(found["overrides"]),
                "; ".join(
                    f"{setting} {'failed' if v is None else f'{v:.4f}'}"
                    for setting, v in found["valid"].items()
                ),
            ]
            for label, found in search["chosen"].items()
        ]
        lines += [markdown(["cell", "chosen", f"validation {metric}"], rows), ""]
    return lines


def _precisions(cells: dict[str, list[dict[str, Any]]]) -> str:
    """The precision the runs trained in (bfloat16 and float32 runs differ beyond their seeds,
    and ``train.precision=auto`` resolves by machine), with counts where they mix."""
    found = Counter(
        r.get("timing", {}).get("precision", "not recorded")
        for runs in cells.values()
        for r in runs
    )
    if len(found) == 1:
        return f"Training precision: {next(iter(found))}."
    mixed = ", ".join(f"{p} ({n} run{'s' if n > 1 else ''})" for p, n in found.most_common())
    return f"Training precision: {mixed}."


def _caveats(failed: list[dict[str, Any]], cells: dict[str, list[dict[str, Any]]]) -> list[str]:
    """What the tables leave out or mix: a sweep's runs that failed or did not finish, and runs
    that changed device part way (``--finish-on``), which no uninterrupted run repeats exactly."""
    notes = []
    for run in failed:
        why = run["error"].splitlines()[0] if run.get("error") else "failed"
        what = f"search run {', '.join(run['overrides'])}" if run.get("search") else "seed"
        notes.append(f"- `{run['cell']}` {what} {run['seed']}: not in the tables ({why}).")
    for label, runs in cells.items():
        for r in runs:
            devices = r.get("timing", {}).get("devices", [])
            if len(devices) > 1:
                parts = ", ".join(f"{d['device']} from epoch {d['from_epoch']}" for d in devices)
                notes.append(f"- `{label}` seed {r['seed']}: trained on {parts}.")
    return ["Notes:", "", *notes, ""] if notes else []


def cost_table(cells: dict[str, list[dict[str, Any]]]) -> str:
    """What each cell costs beside its metrics: the parameters its runs train, the training time
    of a run, and the one-off stages before it (tuning, extraction, user embedding), each a mean
    over the cell's runs as their results record them."""
    head = ["cell", "trained parameters", "training s / run", "epochs", "one-off stages s"]
    out = []
    for label, runs in cells.items():
        costs = [r["cost"] for r in runs if "cost" in r]
        params = f"{statistics.mean(c['trained_parameters'] for c in costs):,.0f}" if costs else ""
        seconds = [r["timing"]["train_seconds"] for r in runs]
        stages: dict[str, list[float]] = defaultdict(list)
        for c in costs:
            for stage, value in c["upstream_seconds"].items():
                stages[stage].append(value)
        upstream = ", ".join(f"{stage} {statistics.mean(v):.0f}" for stage, v in stages.items())
        reads_features = runs[0]["config"]["adapt"]["fusion"] != "id"
        if reads_features and "extract" not in stages:  # a store made before stages were timed
            upstream = ", ".join(filter(None, [upstream, "extract not recorded"]))
        if not costs:
            upstream = "not recorded"
        out.append(
            [
                label,
                params or "not recorded",
                f"{statistics.mean(seconds):.0f} ± {statistics.pstdev(seconds):.0f}",
                f"{statistics.mean(r['timing']['epochs'] for r in runs):.0f}",
                upstream or "none",
            ]
        )
    return markdown(head, out)


def _write_csv(path: Path, rows: list[dict[str, Any]], fields: list[str]) -> None:
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)


def write_report(
    paths: list[Path],
    out: Path,
    baseline: Optional[str] = None,
    title: Optional[str] = None,
    command: Optional[str] = None,
) -> dict[str, Any]:
    found = collect(paths)
    cells, assembled, failed = found.cells, found.assembled, found.failed
    baseline = baseline or found.baseline
    if baseline is not None and baseline not in cells:
        raise ReportError(f"--baseline {baseline!r}: not a cell; cells are {', '.join(cells)}")
    searched = frozenset(k for search in found.searches for k in search["space"])
    bases = regime_baselines(cells, baseline, searched)
    rows = summarise(cells, baseline, bases)
    out.mkdir(parents=True, exist_ok=True)
    sweeps = [Path(p).name for p in paths if (Path(p) / "sweep.json").is_file()]
    title = title or (", ".join(sweeps) if sweeps else f"{len(paths)} runs")
    table = summary_table(rows, baseline)
    _write_csv(
        out / "table.csv",
        rows,
        sorted({k for r in rows for k in r}, key=lambda k: (k != "cell", k)),
    )
    figure(rows, out / "ndcg10.png", title, baseline)
    by_group = group_rows(cells, bases)
    files = ["report.md", "table.csv", "ndcg10.png"]
    if by_group:
        _write_csv(
            out / "groups.csv", by_group, list(dict.fromkeys(k for r in by_group for k in r))
        )
        files.append("groups.csv")
    if group_figure(by_group, cells, out / "groups.png", title):
        files.append("groups.png")
    if curve_figure(rows, cells, out / "sparsity.png", title):
        files.append("sparsity.png")
    datasets = sorted({r["dataset"] for runs in cells.values() for r in runs})
    text = [
        f"# {title}",
        "",
        f"Datasets: {', '.join(datasets)}. {_precisions(cells)} Test metrics, mean ± std "
        f"over seeds; bold = best mean per column."
        + (
            f" Δ = relative change of the mean NDCG@10 against `{baseline}`, with a 95% "
            f"interval from a two-level bootstrap ({RESAMPLES} resamples of the seeds, then of "
            f"the users within each seed, paired by seed and user); an interval that includes "
            f"0 is no detectable difference. p = paired t-test over the per-seed means (the "
            f"unit is the run; none with one seed)."
            if baseline
            else ""
        ),
        "",
        table,
        "",
        "![NDCG@10](ndcg10.png)",
        "",
    ]
    if "sparsity.png" in files:
        text += ["![NDCG@10 against the history cap](sparsity.png)", ""]
    if by_group:
        text += [
            "## By group of test instances",
            "",
            "Test NDCG@10 (full ranking) by group, mean ± std over seeds, n = instances, the "
            "median full rank of their targets (mean over seeds; it still moves where NDCG@10 "
            "is 0) (docs/regimes.md: head = the most popular items by training interactions, "
            "short = the users with the shortest histories, cold = targets never in training); "
            "the change against the baseline of the cell's own data, with its 95% interval, as "
            "above.",
            "",
            *group_tables(by_group, cells),
        ]
        if "groups.png" in files:
            text += ["![NDCG@10 by group](groups.png)", ""]
    text += [
        "## Cost",
        "",
        "Mean over each cell's runs: the parameters a run trains (frozen features excluded), "
        "its training seconds (evaluation of each epoch included) and epochs, and the one-off "
        "stages its inputs needed, as recorded when they were made (a cached stage costs "
        "nothing the second time; tuning is drawn per seed). Times are of this machine, with "
        "the other runs of the sweep beside it.",
        "",
        cost_table(cells),
        "",
    ]
    metric = next(iter(cells.values()))[0]["config"]["train"]["select_metric"]
    text += _selection(cells, assembled) + _search(found.searches, metric)
    text += _caveats(failed, cells)
    if command:
        text += ["Made by:", "", "```bash", command, "```", ""]
    (out / "report.md").write_text("\n".join(text), encoding="utf-8")
    return {
        "files": [str(out / n) for n in files],
        "cells": [r["cell"] for r in rows],
    }
