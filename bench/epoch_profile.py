"""Where a training epoch's time goes: data, forward, loss, backward, optimiser, evaluation.

Runs one epoch of the configured model (default: ID-only SASRec with cross-entropy on ML-100K,
the library's defaults) with a timer around each phase, then one validation pass, and prints
the seconds and share of each; with ``--dtype bfloat16`` the forward and loss run under CPU
bf16 autocast, side by side with float32 in the same run.

Usage: python bench/epoch_profile.py [--dataset ml-100k] [--max-len 50] [--threads 2]
       [--batches N] [k=v ...]
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
from recxplore.registry import LOSSES
from recxplore.train.batches import causal_batch, causal_windows
from recxplore.train.loop import build_evaluations, evaluate
from recxplore.train.losses import DEFAULT_NEGATIVES
from recxplore.train.run import build_model


def profile(cfg: config.Config, batches: int, dtype: torch.dtype) -> dict[str, float]:
    ds, _ = prepare(cfg.data, home_dir(cfg.paths.home))
    model = build_model(cfg, ds)
    valid, _ = build_evaluations(ds, cfg)
    windows = causal_windows(train_sequences(ds), cfg.model.max_len)
    order = np.random.default_rng(0).permutation(len(windows))
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.train.lr)
    loss_fn = LOSSES[cfg.train.loss]
    k = cfg.train.num_negatives or DEFAULT_NEGATIVES[cfg.train.loss]
    gen = torch.Generator().manual_seed(0)
    times: dict[str, float] = defaultdict(float)
    model.train()
    starts = range(0, len(order), cfg.train.batch_size)
    steps = list(starts)[: batches or None]
    for start in steps:
        t0 = time.perf_counter()
        inputs, targets = causal_batch(
            [windows[i] for i in order[start : start + cfg.train.batch_size]]
        )
        x, y = torch.from_numpy(inputs), torch.from_numpy(targets)
        t1 = time.perf_counter()
        with torch.autocast("cpu", dtype=dtype, enabled=dtype != torch.float32):
            hidden = model(x)
            where = y > 0
            h, t = hidden[where], y[where]
            table = model.items.all_items()
            t2 = time.perf_counter()
            loss = loss_fn(h.float(), t, table.float(), gen, k)
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
    t6 = time.perf_counter()
    evaluate(model, valid, cfg, torch.device("cpu"))
    times["evaluation"] = time.perf_counter() - t6
    times["batches"] = len(steps)
    times["epoch_batches"] = len(starts)
    return dict(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", default="ml-100k")
    parser.add_argument("--max-len", type=int, default=50)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batches", type=int, default=0, help="0: the whole epoch")
    parser.add_argument("overrides", nargs="*")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    home = tempfile.mkdtemp(prefix="recxplore-profile-")
    cfg = config.load(
        None,
        [
            f"data.name={args.dataset}",
            f"model.max_len={args.max_len}",
            f"paths.home={home}",
            *args.overrides,
        ],
    )
    rows = {}
    for name, dtype in (("float32", torch.float32), ("bfloat16", torch.bfloat16)):
        rows[name] = profile(cfg, args.batches, dtype)
    phases = ("data", "forward", "loss", "backward", "optimiser", "evaluation")
    print(
        f"{args.dataset}, max length {args.max_len}, {args.threads} threads, "
        f"{int(rows['float32']['batches'])} of {int(rows['float32']['epoch_batches'])} batches"
    )
    print(f"{'phase':<12}" + "".join(f"{n:>22}" for n in rows))
    for phase in phases:
        cells = []
        for name in rows:
            total = sum(rows[name][p] for p in phases)
            cells.append(f"{rows[name][phase]:9.2f} s {100 * rows[name][phase] / total:5.1f}%")
        print(f"{phase:<12}" + "".join(f"{c:>22}" for c in cells))
    totals = {n: sum(rows[n][p] for p in phases) for n in rows}
    print(f"{'total':<12}" + "".join(f"{totals[n]:9.2f} s{'':>7}" for n in rows))
    print(f"bfloat16 / float32 time: {totals['bfloat16'] / totals['float32']:.2f}")
    print(json.dumps({"rows": rows}))


if __name__ == "__main__":
    main()
