"""How much each cell of a sweep loses from validation to test, against its baseline cell.

    python bench/valid_test_gap.py ~/.cache/recxplore/sweeps/final-tuned [--baseline sasrec-id]

A cell selected on validation that loses more on test than its baseline does is a finding that
rests on the validation targets. For each cell, over the sweep's finished runs (search runs left
out): full-ranking NDCG@10 on validation and on test (each run's ``valid_ranks.csv`` and
``test_ranks.csv``), mean over seeds, on all targets and on head and tail targets (each split's
targets grouped by their training popularity, as reports do), and the relative change from
validation to test. Against the baseline: the difference of the two cells' relative changes with
a 95% bootstrap interval (seeds and users resampled together, each draw the same for both
cells and both splits, so the pairing by seed and user is kept). The header gives the tail share
of each split's targets: a split with more tail targets is harder for every cell, and more so
for cells weak on tail items. A last row ranks items by training popularity, for how much each
split rewards following it.
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

import numpy as np

from recxplore import config
from recxplore.cache import home_dir
from recxplore.data.split import eval_set, train_sequences
from recxplore.eval.groups import GroupRules, instance_groups, training_counts
from recxplore.pipeline import prepare
from recxplore.tables import markdown

SPLITS = ("valid", "test")
RESAMPLES = 2000


def ndcg(run_dir: str, split: str) -> dict[str, float]:
    """Each user's full-ranking NDCG@10 on one split."""
    with open(Path(run_dir) / f"{split}_ranks.csv", newline="") as f:
        ranks = {row["user"]: int(row["rank_full"]) for row in csv.DictReader(f)}
    return {u: 1.0 / np.log2(k + 1) if k <= 10 else 0.0 for u, k in ranks.items()}


def split_facts(data_cfg: dict) -> tuple[dict[str, set[str]], dict[str, dict[str, float]]]:
    """Per split: the users whose target is a tail item, and each user's NDCG@10 when items are
    ranked by their training popularity (the user's history masked, as the runs' evaluation
    does): how much the split's targets reward following popularity."""
    cfg = config.from_dict({"data": data_cfg})
    ds, _ = prepare(cfg.data, home_dir(None))
    counts = training_counts(train_sequences(ds), ds.n_items).astype(np.float64)
    counts[0] = -np.inf  # padding never competes
    tails, popularity = {}, {}
    for split in SPLITS:
        data = eval_set(ds, split)
        tail = next(g for g in instance_groups(ds, data, GroupRules()) if g.name == "tail")
        ids = np.array(ds.user_ids, dtype=object)[data.users]
        tails[split] = set(ids[tail.mask])
        popularity[split] = {}
        for user, history, target in zip(ids, data.inputs, data.targets):
            scores = counts.copy()
            scores[history] = -np.inf
            rank = 1 + int((scores > scores[target]).sum())
            popularity[split][user] = 1.0 / np.log2(rank + 1) if rank <= 10 else 0.0
    return tails, popularity


def change(values: dict[str, np.ndarray]) -> float:
    """Relative change of the mean from validation to test (``values[split]``: seeds x users)."""
    return float(values["test"].mean() / values["valid"].mean() - 1.0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sweep", type=Path, help="a sweep's folder or its sweep.json")
    parser.add_argument("--baseline", help="the cell compared against (default: the sweep's)")
    args = parser.parse_args()
    path = args.sweep / "sweep.json" if args.sweep.is_dir() else args.sweep
    sweep = json.loads(path.read_text(encoding="utf-8"))
    baseline = args.baseline or sweep.get("baseline")
    runs: dict[str, dict[int, str]] = {}
    for r in sweep["runs"]:
        if r["status"] == "ok" and not r.get("search"):
            runs.setdefault(r["cell"], {})[r["seed"]] = r["run_dir"]
    if baseline not in runs:
        raise SystemExit(
            f"{path}: no finished runs of baseline cell {baseline!r}; cells: "
            f"{', '.join(runs)} (name one with --baseline)"
        )
    # A sweep's cells may differ in their data (a regime each), so each cell's groups come from
    # its own dataset, prepared once per data setting.
    facts: dict[str, tuple[dict[str, set[str]], dict[str, dict[str, float]]]] = {}
    cell_facts = {}
    for cell, by_seed in runs.items():
        results = Path(next(iter(by_seed.values()))) / "results.json"
        data = json.loads(results.read_text(encoding="utf-8"))["config"]["data"]
        key = json.dumps(data, sort_keys=True, default=str)
        if key not in facts:
            facts[key] = split_facts(data)
        cell_facts[cell] = facts[key]

    # Per cell and split: seeds x users, users in one order shared by every cell.
    users = sorted(ndcg(next(iter(runs[baseline].values())), "test"))
    seeds = sorted(runs[baseline])
    table, tails = {}, {}
    for cell, by_seed in runs.items():
        if not set(seeds) <= set(by_seed) or set(ndcg(by_seed[seeds[0]], "test")) != set(users):
            print(f"{cell}: left out (not the seeds or not the users of {baseline})")
            continue
        table[cell] = {
            split: np.array(
                [[v[u] for u in users] for v in (ndcg(by_seed[s], split) for s in seeds)]
            )
            for split in SPLITS
        }
        tails[cell] = cell_facts[cell][0]
    base_tails, popularity = cell_facts[baseline]
    table["(training popularity)"] = {
        split: np.array([[popularity[split][u] for u in users]]) for split in SPLITS
    }
    tails["(training popularity)"] = base_tails
    rng = np.random.default_rng(0)
    draws = [
        (rng.integers(len(seeds), size=len(seeds)), rng.integers(len(users), size=len(users)))
        for _ in range(RESAMPLES)
    ]
    rows = []
    for cell, values in table.items():
        row = [cell] + [f"{values[s].mean():.4f}" for s in SPLITS] + [f"{change(values):+.1%}"]
        for group in ("head", "tail"):
            # A user's group differs by split (two targets); the change compares each split's
            # own group, so the means are taken over different users.
            means = {}
            for split in SPLITS:
                mask = np.array([(u in tails[cell][split]) == (group == "tail") for u in users])
                means[split] = values[split][:, mask].mean()
            ratio = means["test"] / means["valid"] - 1.0 if means["valid"] else None
            row.append("n/a" if ratio is None else f"{ratio:+.1%}")
        if cell == baseline or cell not in runs:
            row.append("")
        else:
            base = table[baseline]
            diff = change(values) - change(base)
            stats = [
                change({s: values[s][pick_s][:, pick_u] for s in SPLITS})
                - change({s: base[s][pick_s][:, pick_u] for s in SPLITS})
                for pick_s, pick_u in draws
            ]
            low, high = np.percentile(stats, [2.5, 97.5])
            row.append(f"{diff:+.1%} [{low:+.1%}, {high:+.1%}]")
        rows.append(row)
    head = [
        "cell",
        "valid NDCG@10",
        "test NDCG@10",
        "valid -> test",
        "head",
        "tail",
        f"valid -> test vs {baseline} [95% CI]",
    ]
    print(
        f"{path.parent.name}: seeds {', '.join(map(str, seeds))}, {len(users)} users; tail "
        f"targets of {baseline} {len(base_tails['valid']) / len(users):.1%} of validation, "
        f"{len(base_tails['test']) / len(users):.1%} of test; the popularity row is on "
        f"{baseline}'s data\n"
    )
    print(markdown(head, rows))


if __name__ == "__main__":
    main()
