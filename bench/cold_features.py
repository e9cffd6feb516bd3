"""Whether the cold items' features sit apart from the rest's, frozen and after tuning, on a
cold-start split (``data.cold_share``): a linear probe's cross-validated ROC AUC for telling a cold
item from the others by its features alone, and the share of cold items among each cold item's
10 nearest neighbours (centred cosine; 15% of the catalogue is cold, so 0.15 means they mix).

    python bench/cold_features.py data.cold_share=0.15 "tune.stages=[sft]" \
        [--config configs/paper/base.yaml] [--seeds 42 43 44]

A cold item is ranked by its adapted features alone; if tuning sets the items it never saw in
a training sequence apart from those it did, the adapter (fit on the latter) maps them where no
user looks. Every store comes from the cache (the tuning stages and extraction run if they are
missing). Prints one Markdown table.
"""

from __future__ import annotations

import numpy as np
from sklearn.decomposition import PCA
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from feature_shift import command_line, store
from recxplore.tables import markdown

NEIGHBOURS = 10


def probe_auc(x: np.ndarray, cold: np.ndarray) -> tuple[float, float]:
    """Mean and std over 5 folds of a logistic probe's ROC AUC, on 64 principal components so
    that a catalogue of a few thousand items does not let a probe as wide as the features
    memorise it."""
    probe = make_pipeline(
        StandardScaler(), PCA(64, random_state=0), LogisticRegression(max_iter=2000)
    )
    folds = StratifiedKFold(5, shuffle=True, random_state=0)
    scores = cross_val_score(probe, x, cold, cv=folds, scoring="roc_auc")
    return float(scores.mean()), float(scores.std())


def cold_neighbour_share(x: np.ndarray, cold: np.ndarray) -> float:
    """Mean share of cold items among a cold item's nearest neighbours (itself excluded)."""
    x = x - x.mean(0)
    x = x / np.linalg.norm(x, axis=1, keepdims=True)
    sims = x[cold] @ x.T
    sims[np.arange(len(sims)), np.flatnonzero(cold)] = -np.inf
    nearest = np.argpartition(-sims, NEIGHBOURS, axis=1)[:, :NEIGHBOURS]
    return float(cold[nearest].mean())


def main() -> None:
    parser, args, base = command_line(__doc__.splitlines()[0])
    frozen, cold = store(base.replace(**{"tune.stages": []}))
    if cold is None:
        parser.error("not a cold-start split: set data.cold_share (e.g. data.cold_share=0.15)")
    stores = [("frozen", frozen)]
    if base.tune.stages:
        stores += [(f"seed {s}", store(base.replace(**{"train.seed": s}))[0]) for s in args.seeds]
    rows = []
    for label, x in stores:
        auc, spread = probe_auc(x, cold)
        rows.append([label, f"{auc:.3f} ± {spread:.3f}", f"{cold_neighbour_share(x, cold):.3f}"])
    head = [
        "store",
        "probe ROC AUC, cold vs other (5 folds)",
        f"cold share of a cold item's {NEIGHBOURS} neighbours",
    ]
    print(f"tuning: {base.tune.stages}, {' '.join(args.overrides)}; {int(cold.sum())} cold items\n")
    print(markdown(head, rows))


if __name__ == "__main__":
    main()
