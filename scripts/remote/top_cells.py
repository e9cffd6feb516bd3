"""Write a sweep file that reruns the N best cells of a finished sweep, chosen by the mean
validation metric over seeds (never by test), e.g. on another dataset:

    python scripts/remote/top_cells.py ~/.cache/recxplore/sweeps/adapter/sweep.json 3 \
        configs/paper/adapter-ml-1m.yaml --set data.name=ml-1m --skip id moe/replace/nopca
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

import yaml

from recxplore.sweep import load_sweep


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("record", type=Path, help="sweep.json of the finished sweep")
    parser.add_argument("n", type=int)
    parser.add_argument("out", type=Path, help="sweep file to write (beside base.yaml)")
    parser.add_argument("--set", nargs="*", default=[], help="overrides for every cell")
    parser.add_argument("--skip", nargs="*", default=[], help="cells that cannot be chosen")
    args = parser.parse_args()
    record = json.loads(args.record.read_text())
    cells = load_sweep(record["file"]).cells
    scores: dict[str, list[float]] = {}
    for run in record["runs"]:
        if run["status"] != "ok" or run["cell"] in args.skip:
            continue
        results = json.loads((Path(run["run_dir"]) / "results.json").read_text())
        metric = results["config"]["train"]["select_metric"]
        scores.setdefault(run["cell"], []).append(results["metrics"]["valid"]["full"][metric])
    ranked = sorted(scores, key=lambda c: statistics.mean(scores[c]), reverse=True)[: args.n]
    base = Path(record["file"])
    sweep = {
        "name": args.out.stem,
        "config": "base.yaml",
        "set": args.set,
        "seeds": record["seeds"],
        "baseline": record["baseline"],
        "cells": {c: cells[c] for c in [record["baseline"], *ranked]},
    }
    lines = [f"# The {args.n} best cells of {base.name} by mean validation score over seeds:"]
    lines += [f"#   {c}: {statistics.mean(scores[c]):.4f} ({len(scores[c])} seeds)" for c in ranked]
    args.out.write_text("\n".join(lines) + "\n" + yaml.safe_dump(sweep, sort_keys=False))
    print(args.out.read_text())


if __name__ == "__main__":
    main()
