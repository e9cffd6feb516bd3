"""Markdown tables of results objects (test metrics, full and sampled ranking)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

COLUMNS = ("HR@5", "HR@10", "NDCG@5", "NDCG@10")


def markdown(head: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in rows])


def run_label(results: Mapping[str, Any]) -> str:
    c = results["config"]
    return (
        f"{results['dataset']} {c['model']['backbone']} {c['adapt']['fusion']} "
        f"{c['train']['loss']} seed {results['seed']}"
    )


def results_table(runs: Sequence[Mapping[str, Any]], metrics: tuple[str, ...] = COLUMNS) -> str:
    head = (
        ["run"]
        + [f"full {m}" for m in metrics]
        + [f"sampled {m}" for m in metrics]
        + ["best epoch", "train s"]
    )
    rows = []
    for r in runs:
        test = r["metrics"]["test"]
        rows.append(
            [run_label(r)]
            + [f"{test['full'][m]:.4f}" for m in metrics]
            + [f"{test['sampled'][m]:.4f}" for m in metrics]
            + [str(r["timing"]["best_epoch"]), f"{r['timing']['train_seconds']:.0f}"]
        )
    return markdown(head, rows)


def comparison_table(baseline: Mapping[str, Any], model: Mapping[str, Any], label: str) -> str:
    """An ID-only run, a run with features (``label``) and the relative change, per metric."""
    head = ["", *(f"full {m}" for m in COLUMNS), *(f"sampled {m}" for m in COLUMNS)]
    rows = [["ID-only " + baseline["config"]["model"]["backbone"]], [label], ["change"]]
    for protocol in ("full", "sampled"):
        for m in COLUMNS:
            b = baseline["metrics"]["test"][protocol][m]
            x = model["metrics"]["test"][protocol][m]
            rows[0].append(f"{b:.4f}")
            rows[1].append(f"{x:.4f}")
            rows[2].append(f"{x / b - 1:+.1%}" if b else "n/a")
    return markdown(head, rows)
