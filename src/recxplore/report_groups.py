"""The report's sections by group of test instances (``recxplore.eval.groups``) and along a
regime setting (``data.max_history``), recomputed from each run's ``test_ranks.csv`` and its
dataset, so that runs made before groups were recorded get them too.

A cell is compared with the baseline of its own regime: the cell whose settings are the
baseline's except the data settings, which are the cell's (an ID-only cell at each history cap).
"""

from __future__ import annotations

import csv
import json
import statistics
import textwrap
from pathlib import Path
from typing import Any, Optional

import numpy as np

from recxplore import config as config_mod
from recxplore.cache import home_dir
from recxplore.data.prepare import prepare
from recxplore.data.split import eval_set
from recxplore.errors import RecxploreError
from recxplore.eval.compare import compare
from recxplore.eval.groups import GroupRules, instance_groups
from recxplore.tables import markdown

FAMILIES = ("popularity", "popularity bins", "history", "history bins", "cold")
Runs = dict[str, list[dict[str, Any]]]


def per_user_ranks(run_dir: str, protocol: str) -> dict[str, int]:
    with open(Path(run_dir) / "test_ranks.csv", newline="") as f:
        return {row["user"]: int(row[f"rank_{protocol}"]) for row in csv.DictReader(f)}


def per_user_ndcg(run_dir: str, protocol: str, k: int = 10) -> dict[str, float]:
    return {
        user: 1.0 / np.log2(rank + 1) if rank <= k else 0.0
        for user, rank in per_user_ranks(run_dir, protocol).items()
    }


def _settings(cfg: dict[str, Any], defaults: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """A run's settings as ``section.key`` as this version reads them: a setting added since
    the run was made at its ``defaults`` value, one removed since left out."""
    return {
        f"{section}.{key}": cfg.get(section, {}).get(key, default)
        for section, values in defaults.items()
        for key, default in values.items()
    }


def regime_baselines(
    cells: Runs, baseline: Optional[str], searched: frozenset[str] = frozenset()
) -> dict[str, Optional[str]]:
    """Each cell's baseline: the baseline's settings in the cell's regime (None: none run).
    Settings a search chose (``searched``) may differ."""
    if baseline is None or baseline not in cells:
        return {label: None for label in cells}

    defaults = config_mod.load(None, []).to_dict()
    settings = {label: _settings(runs[0]["config"], defaults) for label, runs in cells.items()}

    ignored = searched | {"train.seed", "data.data_dir", "paths.home", "paths.runs_dir"}

    def part(label: str, data: bool) -> str:
        """The cell's data settings (its regime), or all its other settings."""
        kept = {
            k: v
            for k, v in settings[label].items()
            if k.startswith("data.") == data and k not in ignored
        }
        return json.dumps(kept, sort_keys=True, default=str)

    base_rest = part(baseline, data=False)
    by_regime = {part(label, True): label for label in cells if part(label, False) == base_rest}
    found = {label: by_regime.get(part(label, True)) for label in cells}
    return {label: None if base == label else base for label, base in found.items()}


class _Datasets:
    """The groups of the runs' datasets, each dataset prepared (read from the cache) once."""

    def __init__(self) -> None:
        self.found: dict[str, Optional[dict[str, set[str]]]] = {}

    def groups(self, results: dict[str, Any]) -> Optional[dict[str, set[str]]]:
        """``"<family>: <group>"`` -> the raw ids of the users of the run's test instances in
        it; None when the run's dataset cannot be prepared here."""
        cfg = results["config"]
        key = json.dumps([cfg["data"], cfg.get("eval", {})], sort_keys=True, default=str)
        if key not in self.found:
            try:
                loaded = config_mod.from_dict({"data": cfg["data"], "eval": cfg.get("eval", {})})
                ds, _ = prepare(loaded.data, home_dir(cfg.get("paths", {}).get("home")))
                data = eval_set(ds, "test")
                groups = instance_groups(ds, data, GroupRules.of(loaded.eval))
                ids = np.array(ds.user_ids, dtype=object)[data.users]
                self.found[key] = {f"{g.family}: {g.name}": set(ids[g.mask]) for g in groups}
            except RecxploreError:
                self.found[key] = None
        return self.found[key]


def _group_values(runs: list[dict[str, Any]], datasets: _Datasets) -> dict[str, list[dict]]:
    """Per group: for each run, its per-user NDCG@10 and median rank (full ranking) over the
    group's users."""
    out: dict[str, list[dict]] = {}
    for r in runs:
        groups = datasets.groups(r)
        if groups is None:
            continue
        ranks = per_user_ranks(r["run_dir"], "full")
        values = {u: 1.0 / np.log2(k + 1) if k <= 10 else 0.0 for u, k in ranks.items()}
        for name, users in groups.items():
            mine = [u for u in users if u in values]
            out.setdefault(name, []).append(
                {
                    "seed": r["seed"],
                    "values": {u: values[u] for u in mine},
                    "median_rank": float(np.median([ranks[u] for u in mine])) if mine else None,
                }
            )
    return out


def group_rows(cells: Runs, bases: dict[str, Optional[str]]) -> list[dict[str, Any]]:
    """One row per (cell, group): size, mean and std over seeds of NDCG@10, and the change
    against the cell's regime baseline (``bases``) with its 95% interval."""
    datasets = _Datasets()
    values = {label: _group_values(runs, datasets) for label, runs in cells.items()}
    rows = []
    for label in cells:
        for name, per_run in values[label].items():
            means = [statistics.mean(r["values"].values()) for r in per_run if r["values"]]
            if not means:
                continue
            row = {
                "cell": label,
                "family": name.split(": ", 1)[0],
                "group": name.split(": ", 1)[1],
                "users": len(per_run[0]["values"]),
                "NDCG@10": statistics.mean(means),
                "NDCG@10 std": statistics.stdev(means) if len(means) > 1 else 0.0,
                "median rank": statistics.mean(r["median_rank"] for r in per_run if r["values"]),
            }
            base = bases[label]
            if base is not None and name in values[base]:
                row.update(_against(per_run, values[base][name]))
            rows.append(row)
    return rows


def _against(cell: list[dict], base: list[dict]) -> dict[str, Any]:
    by_seed = {r["seed"]: r["values"] for r in base}
    xs, ys = [], []
    for r in cell:
        other = by_seed.get(r["seed"], {})
        common = sorted(set(r["values"]) & set(other))
        if common:
            xs.append(np.array([r["values"][u] for u in common]))
            ys.append(np.array([other[u] for u in common]))
    if not xs or not any(y.sum() for y in ys):
        return {}
    found = compare(xs, ys)
    return {"change": found.change, "low": found.low, "high": found.high, "p": found.p}


def _text(row: dict[str, Any], seeds: int) -> str:
    text = f"{row['NDCG@10']:.4f}" + (f" ± {row['NDCG@10 std']:.4f}" if seeds > 1 else "")
    text += f" (n {row['users']}, median rank {row['median rank']:.0f})"
    if "change" in row:
        verdict = "" if not row["low"] <= 0.0 <= row["high"] else ", no det. diff."
        text += f"; {row['change']:+.1%} [{row['low']:+.1%}, {row['high']:+.1%}]{verdict}"
    return text


def group_tables(rows: list[dict[str, Any]], cells: Runs) -> list[str]:
    """A Markdown table per family: cells by groups (bins by position, their ranges shown)."""
    lines: list[str] = []
    for family in FAMILIES:
        mine = [r for r in rows if r["family"] == family]
        if not mine:
            continue
        binned = family.endswith("bins")
        columns: list[str] = []
        table: dict[str, dict[str, str]] = {}
        for label in cells:
            ours = [r for r in mine if r["cell"] == label]
            for i, r in enumerate(ours):
                column = f"bin {i + 1}" if binned else r["group"]
                if column not in columns:
                    columns.append(column)
                text = _text(r, len(cells[label]))
                table.setdefault(label, {})[column] = f"{r['group']}: {text}" if binned else text
        body = [[label] + [table[label].get(c, "") for c in columns] for label in table]
        lines += [f"**{family}**", "", markdown(["cell", *columns], body), ""]
    return lines


def group_figure(rows: list[dict[str, Any]], cells: Runs, path: Path, title: str) -> bool:
    """Test NDCG@10 by group, per cell, for the two-group families and the cold split."""
    families = [f for f in ("popularity", "history", "cold") if any(r["family"] == f for r in rows)]
    if not families:
        return False
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = list(cells)
    fig, axes = plt.subplots(
        1, len(families), figsize=(max(6, 0.5 * len(labels) + 3) * len(families) / 1.6, 3.8)
    )
    for ax, family in zip(np.atleast_1d(axes), families):
        groups = list(dict.fromkeys(r["group"] for r in rows if r["family"] == family))
        width = 0.8 / len(groups)
        for g, group in enumerate(groups):
            found = {r["cell"]: r for r in rows if r["family"] == family and r["group"] == group}
            ax.bar(
                [i + g * width for i in range(len(labels))],
                [found[c]["NDCG@10"] if c in found else 0.0 for c in labels],
                width,
                yerr=[found[c]["NDCG@10 std"] if c in found else 0.0 for c in labels],
                capsize=2,
                label=group,
            )
        ax.set_xticks(
            [i + 0.4 - width / 2 for i in range(len(labels))],
            labels,
            rotation=45,
            ha="right",
            fontsize=7,
        )
        ax.set_title(f"test NDCG@10 by {family}")
        ax.legend(fontsize=7)
    fig.suptitle(textwrap.fill(title, 120), fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def curve_figure(summary: list[dict[str, Any]], cells: Runs, path: Path, title: str) -> bool:
    """Test NDCG@10 against ``data.max_history`` per method, when the cells vary it."""
    caps = {label: runs[0]["config"]["data"].get("max_history") for label, runs in cells.items()}
    if len(set(caps.values())) < 2:
        return False
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    finite = [c for c in caps.values() if c is not None]
    whole = 2 * max(finite) if finite else 1  # "all" drawn right of the largest cap
    methods: dict[str, list[tuple[float, float, float]]] = {}
    for row in summary:
        method = row["cell"].split("@")[0]
        cap = caps[row["cell"]]
        methods.setdefault(method, []).append(
            (cap if cap is not None else whole, row["full NDCG@10"], row["full NDCG@10 std"])
        )
    fig, ax = plt.subplots(figsize=(6.5, 4))
    for method, points in methods.items():
        points.sort()
        xs, ys, stds = (list(v) for v in zip(*points))
        ax.errorbar(xs, ys, yerr=stds, marker="o", capsize=3, label=method)
    ticks = sorted({x for pts in methods.values() for x, _, _ in pts})
    ax.set_xscale("log")
    ax.set_xticks(ticks, [str(t) if t != whole or whole in finite else "all" for t in ticks])
    ax.set_xlabel("history cap (most recent interactions per user)")
    ax.set_ylabel("test NDCG@10, full ranking")
    ax.legend(fontsize=8)
    ax.set_title(textwrap.fill(title, 80), fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True
