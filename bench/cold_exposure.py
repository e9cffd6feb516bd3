"""Where trained runs on a cold-start split (``data.cold_share``) put the cold items: how many of
the test users' top-10 slots they take (beside their share of the catalogue), how many test
users see one, how many distinct cold items reach anyone's top 10, and how a cold item's scores
and output vector compare with the other items'.

    python bench/cold_exposure.py RUN_DIR [RUN_DIR ...]    # folders under <home>/runs/

A model that ranks cold items high for nobody pushes them all down alike; one that ranks them
high for the wrong users matches them badly. Scores are the served ones (each run is exported
to a bundle in a temporary folder), the history's own items excluded as in evaluation. Prints
one Markdown table, a row per run.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
import torch

from recxplore.cache import home_dir
from recxplore.data.prepare import prepare
from recxplore.data.split import eval_set
from recxplore.eval.metrics import ndcg
from recxplore.eval.protocol import ranks_from_scores
from recxplore.serve.bundle import export_bundle, load_bundle
from recxplore.serve.recommend import user_scores
from recxplore.tables import markdown

K = 10
BATCH = 256


def exposure(run_dir: Path) -> list[str]:
    with tempfile.TemporaryDirectory() as tmp:
        export_bundle(run_dir, Path(tmp) / "bundle")
        bundle = load_bundle(Path(tmp) / "bundle")
    ds, _ = prepare(bundle.config.data, home_dir(bundle.config.paths.home))
    if ds.cold is None:
        raise SystemExit(f"{run_dir}: not a cold-start split (data.cold_share is 0)")
    cold, test = ds.cold, eval_set(ds, "test")
    slots, users_seeing, reached, gaps, cold_ranks = 0, 0, np.zeros_like(cold), [], []
    for start in range(0, len(test), BATCH):
        histories = [list(h) for h in test.inputs[start : start + BATCH]]
        scores = user_scores(bundle, histories).numpy().copy()
        targets = test.targets[start : start + BATCH]
        rows = np.flatnonzero(cold[targets])
        target_scores = scores[rows, targets[rows]]
        if bundle.config.eval.mask_history:
            for row, history in enumerate(histories):
                scores[row, history] = -np.inf
        top = np.argpartition(-scores, K, axis=1)[:, :K]
        ranked = scores[rows].copy()  # evaluation ranks a target its history holds too
        ranked[np.arange(len(rows)), targets[rows]] = target_scores
        found = ranks_from_scores(torch.from_numpy(ranked), torch.from_numpy(targets[rows]))
        cold_ranks.append(found.numpy())
        in_top = cold[top]
        slots += int(in_top.sum())
        users_seeing += int(in_top.any(1).sum())
        reached[top[in_top]] = True
        kept = scores[:, 1:]  # padding dropped; masked items become NaN
        kept[~np.isfinite(kept)] = np.nan
        gap = np.nanmean(kept[:, cold[1:]], 1) - np.nanmean(kept[:, ~cold[1:]], 1)
        gaps.append(gap / np.nanstd(kept, 1))
    norms = bundle.table[1:].norm(dim=1).numpy()
    return [
        run_dir.name,
        f"{slots / (K * len(test)):.4f} ({cold[1:].mean():.3f})",
        f"{users_seeing / len(test):.3f}",
        f"{int(reached.sum())} of {int(cold.sum())}",
        f"{np.concatenate(gaps).mean():+.3f}",
        f"{norms[cold[1:]].mean() / norms[~cold[1:]].mean():.3f}",
        f"{ndcg(np.concatenate(cold_ranks), K):.4f} (n {int(cold[test.targets].sum())})",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path)
    args = parser.parse_args()
    head = [
        "run",
        f"cold share of top-{K} slots (of the catalogue)",
        f"test users with a cold item in their top {K}",
        f"cold items in anyone's top {K}",
        "cold minus other items' mean score, in score stds",
        "cold / other output vector norm",
        f"cold test targets' NDCG@{K}",
    ]
    print(markdown(head, [exposure(run) for run in args.runs]))


if __name__ == "__main__":
    main()
