"""The MoE adapter's forward and backward over a whole item table, in the two forms of
UniSRec's experts, side by side in one run:

- broadcast: (x - b_k) W_k as written, through an (N, G, d_in) copy of x (the earlier form);
- product: x W_k - b_k W_k, one (N, d_in) x (d_in, G * d_out) product (``MoEAdapter`` now).

Both run the same adapter's weights, with non-zero biases, in float32 and under bfloat16
autocast; the table prints each form's median milliseconds, the speed-up and the largest
difference between the two outputs.

Usage: python bench/moe_speed.py [--items 3504] [--d-in 256] [--d-out 64] [--experts 8]
       [--threads 1] [--repeats 15]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F

from recxplore.adapt.adapters.moe import MoEAdapter


def broadcast_form(moe: MoEAdapter, x: torch.Tensor) -> torch.Tensor:
    experts = torch.einsum("ngd,gde->nge", x[:, None, :] - moe.bias, moe.weight)
    logits = moe.gate(x)
    if moe.training and moe.noise:
        logits = logits + torch.randn_like(logits) * F.softplus(moe.gate_noise(x))
    return (experts * logits.softmax(-1).unsqueeze(-1)).sum(1)


def timed(form: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, bf16: bool, n: int):
    times = []
    for _ in range(n):
        started = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            out = form(x)
        out.float().square().mean().backward()
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--items", type=int, default=3504, help="table rows (ML-1M: 3,504)")
    parser.add_argument("--d-in", type=int, default=256)
    parser.add_argument("--d-out", type=int, default=64)
    parser.add_argument("--experts", type=int, default=8)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    moe = MoEAdapter(args.d_in, args.d_out, args.experts, noise=False)
    torch.nn.init.normal_(moe.bias)
    torch.nn.init.normal_(moe.gate.weight)
    x = torch.randn(args.items, args.d_in)
    with torch.no_grad():
        diff = (moe(x) - broadcast_form(moe, x)).abs().max().item()
    print(
        f"{args.items} items, {args.d_in} -> {args.d_out}, {args.experts} experts, "
        f"{args.threads} thread(s); ms per forward + backward (median of {args.repeats})"
    )
    print(f"{'precision':<10}{'broadcast':>12}{'product':>12}{'speed-up':>10}")
    for name, bf16 in (("float32", False), ("bfloat16", True)):
        before = timed(lambda t: broadcast_form(moe, t), x, bf16, args.repeats)
        after = timed(moe, x, bf16, args.repeats)
        print(f"{name:<10}{before:>12.1f}{after:>12.1f}{before / after:>9.2f}x")
    print(f"largest output difference (float32): {diff:.2e}")


if __name__ == "__main__":
    main()
