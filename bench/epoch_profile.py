"""Where a training epoch's time goes, for the trainer's speed settings side by side.

Runs the first ``--batches`` batches of an epoch of the configured model (default: ID-only
SASRec with cross-entropy on ML-1M at max length 200) with a timer around each phase (data,
forward, loss, backward, optimiser), then one validation pass, once per variant:

- before: random batching, dropout on the attention weights, float32 (the old defaults);
- each speed setting alone: ``model.attention_dropout=0``, ``train.batching=bucketed``,
  ``train.precision=bfloat16``;
- defaults: bucketed, and bfloat16 where the CPU has it natively (``train.precision=auto``, as
  training resolves it), attention dropout kept (validation keeps it);
- all three together.

Phase times are scaled to a whole epoch (bucketed batching has another number of batches), and
each variant's total is printed as a ratio to ``before``, all measured in this one run.

Usage: python bench/epoch_profile.py [--dataset ml-1m] [--max-len 200] [--threads 2]
       [--batches 12] [k=v ...]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections import defaultdict

import numpy as np
import torch

from recxplore import config
from recxplore.cache import home_dir
from recxplore.data.prepare import prepare
from recxplore.data.split import train_sequences
from recxplore.pipeline import item_inputs
from recxplore.registry import LOSSES
from recxplore.runtime import autocast, resolve_precision
from recxplore.train.batches import causal_batch, causal_windows, epoch_batches
from recxplore.train.loop import build_evaluations, evaluate
from recxplore.train.losses import DEFAULT_NEGATIVES
from recxplore.train.run import build_model

BEFORE = ["model.attention_dropout=null", "train.batching=random", "train.precision=float32"]
VARIANTS = {
    "before": BEFORE,
    "no attention dropout": BEFORE + ["model.attention_dropout=0"],
    "bucketed": BEFORE + ["train.batching=bucketed"],
    "bfloat16": BEFORE + ["train.precision=bfloat16"],
    "defaults": ["train.batching=bucketed", "train.precision=auto"],
    "all three": [
        "model.attention_dropout=0",
        "train.batching=bucketed",
        "train.precision=bfloat16",
    ],
}
PHASES = ("data", "forward", "loss", "backward", "optimiser", "evaluation")


def profile(cfg: config.Config, batches: int) -> dict[str, float]:
    ds, data = prepare(cfg.data, home_dir(cfg.paths.home))
    # the stored features, PQ codes or ID table an item embedder needs (extracted if not cached)
    model = build_model(cfg, ds, item_inputs(cfg, ds, data.key, progress=False))
    valid, _ = build_evaluations(ds, cfg)
    windows = causal_windows(train_sequences(ds), cfg.model.max_len)
    lengths = np.array([len(w) for w in windows])
    rng = np.random.default_rng(0)
    epoch = epoch_batches(lengths, cfg.train.batch_size, rng, cfg.train.batching == "bucketed")
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.train.lr)
    loss_fn = LOSSES[cfg.train.loss]
    k = cfg.train.num_negatives or DEFAULT_NEGATIVES[cfg.train.loss]
    gen = torch.Generator().manual_seed(0)
    cpu = torch.device("cpu")
    precision = resolve_precision(cfg.train.precision, cpu.type)
    times: dict[str, float] = defaultdict(float)
    model.train()
    steps = epoch[: batches or None]
    for batch in steps:
        t0 = time.perf_counter()
        inputs, targets = causal_batch([windows[i] for i in batch])
        x, y = torch.from_numpy(inputs), torch.from_numpy(targets)
        t1 = time.perf_counter()
        with autocast(cpu, precision):
            hidden = model(x)
            where = y > 0
            h, t = hidden[where], y[where]
            table = model.items.all_items()
            t2 = time.perf_counter()
            loss = loss_fn(h, t, table, gen, k)
        t3 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        t4 = time.perf_counter()
        opt.step()
        t5 = time.perf_counter()
        for name, a, b in (
            ("data", t0, t1),
            ("forward", t1, t2),
            ("loss", t2, t3),
            ("backward", t3, t4),
            ("optimiser", t4, t5),
        ):
            times[name] += b - a
    scale = len(epoch) / len(steps)
    out = {name: value * scale for name, value in times.items()}
    t6 = time.perf_counter()
    evaluate(model, valid, cfg, cpu)
    out["evaluation"] = time.perf_counter() - t6
    out["batches"], out["epoch_batches"] = len(steps), len(epoch)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", default="ml-1m")
    parser.add_argument("--max-len", type=int, default=200)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batches", type=int, default=12, help="0: the whole epoch")
    parser.add_argument("--home", help="cache folder (default: a temporary one)")
    parser.add_argument("overrides", nargs="*")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    home = args.home or tempfile.mkdtemp(prefix="recxplore-profile-")
    rows = {}
    for name, variant in VARIANTS.items():
        cfg = config.load(
            None,
            [
                f"data.name={args.dataset}",
                f"model.max_len={args.max_len}",
                f"paths.home={home}",
                *args.overrides,
                *variant,
            ],
        )
        rows[name] = profile(cfg, args.batches)
    print(
        f"{args.dataset}, max length {args.max_len}, {args.threads} threads; seconds an epoch "
        f"(from {args.batches or 'all'} batches) and one validation pass"
    )
    print(f"{'phase':<12}" + "".join(f"{n:>22}" for n in rows))
    totals = {n: sum(rows[n][p] for p in PHASES) for n in rows}
    for phase in PHASES:
        cells = [f"{r[phase]:9.2f} s {100 * r[phase] / totals[n]:5.1f}%" for n, r in rows.items()]
        print(f"{phase:<12}" + "".join(f"{c:>22}" for c in cells))
    print(f"{'total':<12}" + "".join(f"{totals[n]:9.2f} s{'':>7}" for n in rows))
    print(f"{'batches':<12}" + "".join(f"{int(r['epoch_batches']):>22}" for r in rows.values()))
    print(f"{'vs before':<12}" + "".join(f"{totals['before'] / totals[n]:>21.2f}x" for n in rows))
    print(json.dumps({"rows": rows}))


if __name__ == "__main__":
    main()
