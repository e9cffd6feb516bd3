"""The adapter x ID-fusion grid (the paper's feature-adaptation study) over several seeds.

Every cell is a normal cached run (`recxplore train` with overrides), so an interrupted grid
resumes where it stopped and finished cells are never retrained. Prints mean +- std over seeds
of the test metrics, full ranking and the paper's 100 sampled negatives.

Usage:
  python bench/adapter_grid.py --dataset ml-100k --seeds 42 43 44
  python bench/adapter_grid.py --dataset ml-1m --cells moe/replace linear/concat id \\
      --set model.max_len=200
A cell is ``adapter/fusion``, ``id`` (the ID-only baseline) or ``moe/replace/nopca``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys

from recxplore import config
from recxplore.train.run import train_run

ADAPTERS = ("linear", "mlp", "moe", "pq")
FUSIONS = ("replace", "concat", "add", "align")
ALL_CELLS = ["id"] + [f"{a}/{f}" for a in ADAPTERS for f in FUSIONS] + ["moe/replace/nopca"]
METRICS = ("HR@5", "HR@10", "NDCG@5", "NDCG@10")


def cell_overrides(cell: str) -> list[str]:
    if cell == "id":
        return ["adapt.fusion=id"]
    parts = cell.split("/")
    out = [f"adapt.adapter={parts[0]}", f"adapt.fusion={parts[1]}"]
    if parts[2:] == ["nopca"]:
        out.append("adapt.pca=null")
    return out


def mean_std(values: list[float]) -> str:
    if len(values) == 1:
        return f"{values[0]:.4f}"
    return f"{statistics.mean(values):.4f} ± {statistics.stdev(values):.4f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="ml-100k")
    parser.add_argument("--seeds", type=int, nargs="+", default=[42, 43, 44])
    parser.add_argument("--cells", nargs="+", default=ALL_CELLS)
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE",
                        help="overrides applied to every cell")
    parser.add_argument("--out", help="also write the Markdown table to this file")
    args = parser.parse_args()

    rows = []
    for cell in args.cells:
        runs = []
        for seed in args.seeds:
            cfg = config.load(None, [f"data.name={args.dataset}", f"train.seed={seed}"]
                              + args.set + cell_overrides(cell))
            results = train_run(cfg, progress=False)
            runs.append(results)
            print(json.dumps({"cell": cell, "seed": seed,
                              "test_full_NDCG@10": results["metrics"]["test"]["full"]["NDCG@10"],
                              "run_dir": results["run_dir"]}), file=sys.stderr, flush=True)
        row = {"cell": cell, "seeds": len(runs)}
        for protocol in ("full", "sampled"):
            for metric in METRICS:
                row[f"{protocol} {metric}"] = mean_std(
                    [r["metrics"]["test"][protocol][metric] for r in runs])
        row["epochs"] = statistics.mean(r["timing"]["epochs"] for r in runs)
        rows.append(row)

    head = list(rows[0])
    lines = [f"{args.dataset}, test metrics, mean ± std over seeds {args.seeds}; overrides: "
             f"{' '.join(args.set) or 'none'}", "",
             "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(str(r[h]) for h in head) + " |" for r in rows]
    table = "\n".join(lines)
    print(table)
    if args.out:
        with open(args.out, "w", encoding="utf-8") as f:
            f.write(table + "\n")


if __name__ == "__main__":
    main()
