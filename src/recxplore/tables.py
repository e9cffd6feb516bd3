"""Markdown tables of results objects (test metrics, full and sampled ranking)."""

from __future__ import annotations

from typing import Any

COLUMNS = ("HR@5", "HR@10", "NDCG@5", "NDCG@10")


def run_label(results: dict[str, Any]) -> str:
    c = results["config"]
    return (f"{results['dataset']} {c['model']['backbone']} {c['adapt']['fusion']} "
            f"{c['train']['loss']} seed {results['seed']}")


def results_table(runs: list[dict[str, Any]], metrics: tuple[str, ...] = COLUMNS) -> str:
    head = ["run"] + [f"full {m}" for m in metrics] + [f"sampled {m}" for m in metrics] + \
        ["best epoch", "train s"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in runs:
        test = r["metrics"]["test"]
        cells = [run_label(r)] + [f"{test['full'][m]:.4f}" for m in metrics] + \
            [f"{test['sampled'][m]:.4f}" for m in metrics] + \
            [str(r["timing"]["best_epoch"]), f"{r['timing']['train_seconds']:.0f}"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
