"""Full-catalogue softmax cross-entropy: chunked (recxplore) vs full logits, side by side.

One ML-1M-sized training step (128 windows x 200 positions = 25,600 targets over 3,504 items,
hidden 64): forward + backward seconds (best of 5) for both, the size of the logits matrix the
chunked version never holds, and the agreement of losses and gradients.

Usage: python bench/ce_loss.py [--positions 25600] [--items 3504] [--hidden 64] [--threads N]
"""

from __future__ import annotations

import argparse
import json
import time

import torch
import torch.nn.functional as F

from recxplore.train.losses import cross_entropy


def full_logits(h, targets, table):
    logits = h @ table.T
    logits[:, 0] = float("-inf")
    return F.cross_entropy(logits, targets)


def measure(fn, h, targets, table, reps=5):
    best = float("inf")
    for _ in range(reps):
        h.grad = table.grad = None
        start = time.perf_counter()
        fn(h, targets, table).backward()
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--positions", type=int, default=25_600)
    parser.add_argument("--items", type=int, default=3_504)
    parser.add_argument("--hidden", type=int, default=64)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    h = torch.randn(args.positions, args.hidden, requires_grad=True)
    table = torch.randn(args.items, args.hidden, requires_grad=True)
    targets = torch.randint(1, args.items, (args.positions,))
    out = {}
    for name, fn in (("full_logits", full_logits), ("chunked", cross_entropy)):
        out[f"{name}_seconds"] = round(measure(fn, h, targets, table), 4)
        loss = fn(h, targets, table)
        loss.backward()
        out[f"{name}_loss"] = round(loss.item(), 6)
        out[f"{name}_grad_h"] = h.grad.clone()
        h.grad = table.grad = None
    out["max_grad_difference"] = float(
        (out.pop("full_logits_grad_h") - out.pop("chunked_grad_h")).abs().max()
    )
    out["logits_megabytes_avoided"] = round(args.positions * args.items * 4 / 2**20, 1)
    out["speedup"] = round(out["full_logits_seconds"] / out["chunked_seconds"], 2)
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
