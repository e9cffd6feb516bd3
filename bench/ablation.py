"""One-module-at-a-time studies of the paper over several seeds, printed as a table.

Every cell is a normal cached run (`recxplore train` with overrides), so an interrupted study
resumes where it stopped and finished cells are never retrained. Prints mean +- std over seeds
of the test metrics, full ranking and the paper's 100 sampled negatives.

Suites (``--suite``):
  adapters  the adapter x ID-fusion grid: cells ``id`` (ID-only baseline), ``ADAPTER/FUSION``
            and ``moe/replace/nopca``
  tuning    the fine-tuning study with features fixed at flatten, mean pooling, PCA, MoE,
            replace: cells ``frozen``, ``cpt``, ``sft``, ``scft``, ``cpt+sft``
A cell may also be written ``LABEL:key=value,key=value`` (any overrides).

Usage:
  python bench/ablation.py --suite adapters --dataset ml-100k --seeds 42 43 44
  python bench/ablation.py --suite adapters --dataset ml-1m --cells moe/replace linear/concat id
  python bench/ablation.py --suite tuning --set tune.steps=100
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
SUITES = {
    "adapters": ["id"] + [f"{a}/{f}" for a in ADAPTERS for f in FUSIONS] + ["moe/replace/nopca"],
    "tuning": ["frozen", "cpt", "sft", "scft", "cpt+sft"],
}
METRICS = ("HR@5", "HR@10", "NDCG@5", "NDCG@10")


def cell_overrides(cell: str) -> list[str]:
    if ":" in cell:
        return [o for o in cell.split(":", 1)[1].split(",") if o]
    if cell == "id":
        return ["adapt.fusion=id"]
    if cell == "frozen" or cell in ("cpt", "sft", "scft", "cpt+sft"):
        stages = [] if cell == "frozen" else cell.split("+")
        return ["adapt.fusion=replace", "adapt.adapter=moe", f"tune.stages=[{','.join(stages)}]"]
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
    parser.add_argument("--suite", choices=sorted(SUITES), default="adapters")
    parser.add_argument("--cells", nargs="+", help="a subset or other cells (default: the "
                        "suite's)")
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE",
                        help="overrides applied to every cell")
    parser.add_argument("--out", help="also write the Markdown table to this file")
    args = parser.parse_args()

    rows = []
    for cell in args.cells or SUITES[args.suite]:
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
