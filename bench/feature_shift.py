"""How far tuning moved each item's features: per-item cosine between the frozen extractor's
vector and the tuned one, for each tuning seed, and between two seeds' tuned vectors.

    python bench/feature_shift.py [--config configs/paper/base.yaml] [--seeds 42 43 44] \
        [k=v ...]    # e.g. "tune.stages=[scft]" tune.batch_size=32 tune.lr=2e-4 tune.steps=150

Every store comes from the cache (the tuning stages and extraction run if they are missing).
Prints one Markdown table: mean, minimum and 5th percentile of the cosines, raw and after
centring each store on its items' mean (the common direction dominates raw cosines). On a
cold-start split (``data.cold_share``) two more columns give the mean centred cosine over the
cold items and over the rest: whether tuning moved the items it never saw in a training
sequence differently.
"""

from __future__ import annotations

import argparse
import itertools
from typing import Optional

import numpy as np

from recxplore import config
from recxplore.extract.store import open_store
from recxplore.pipeline import features
from recxplore.tables import markdown


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = a / np.linalg.norm(a, axis=1, keepdims=True)
    b = b / np.linalg.norm(b, axis=1, keepdims=True)
    return (a * b).sum(1)


def store(cfg: config.Config) -> tuple[np.ndarray, Optional[np.ndarray]]:
    """The items' vectors (padding row dropped) and, on a cold-start split, the cold mask."""
    ds, _, _, summary = features(cfg, progress=False)
    cold = None if ds.cold is None else ds.cold[1:]
    return open_store(summary.path, ds).embeddings[1:].astype(np.float64), cold


def command_line(
    description: str,
) -> tuple[argparse.ArgumentParser, argparse.Namespace, config.Config]:
    """The command line of the scripts that compare frozen and tuned stores: ``--config``,
    ``--seeds`` (the tuning seeds), then overrides; the parser, its arguments and the config."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--config", default="configs/paper/base.yaml")
    parser.add_argument("--seeds", type=int, nargs="+", default=[42, 43, 44])
    parser.add_argument("overrides", nargs="*")
    args = parser.parse_args()
    return parser, args, config.load(args.config, [*args.overrides])


def main() -> None:
    _, args, base = command_line(__doc__.splitlines()[0])
    frozen, cold = store(base.replace(**{"tune.stages": []}))
    tuned = {s: store(base.replace(**{"train.seed": s}))[0] for s in args.seeds}
    pairs = [(f"frozen vs seed {s}", frozen, t) for s, t in tuned.items()]
    pairs += [
        (f"seed {a} vs seed {b}", tuned[a], tuned[b]) for a, b in itertools.combinations(tuned, 2)
    ]
    rows = []
    for label, x, y in pairs:
        raw, centred = cosines(x, y), cosines(x - x.mean(0), y - y.mean(0))
        row = [label] + [
            f"{f(c):.4f}"
            for c in (raw, centred)
            for f in (np.mean, np.min, lambda v: np.percentile(v, 5))
        ]
        if cold is not None:
            row += [f"{centred[cold].mean():.4f}", f"{centred[~cold].mean():.4f}"]
        rows.append(row)
    head = ["stores", "mean", "min", "p5", "mean (centred)", "min (centred)", "p5 (centred)"]
    if cold is not None:
        head += [f"cold items, n {int(cold.sum())} (centred)", "other items (centred)"]
    print(f"tuning: {base.tune.stages}, {' '.join(args.overrides)}\n")
    print(markdown(head, rows))


if __name__ == "__main__":
    main()
