"""Extraction speed of smollm2-135m over the ML-1M item texts, measured side by side.

Prints, in one run:
- this machine's fp32 matrix-multiply peak (large square torch.mm);
- batched fp32 extraction: items/s, real tokens/s and achieved FLOP/s (2 x parameters x real
  tokens per second) as a fraction of that peak (also with non-embedding parameters only, since
  the embedding lookup does no multiply-adds);
- bf16 throughput as a multiple of fp32, and the per-item cosine similarity between the two;
- the speed-up of batched extraction over a naive one-item-at-a-time loop (on a subset).

Targets (issue 3): >= 70% of the fp32 peak; bf16 >= 1.6 x fp32 with every cosine >= 0.99.

Usage: python bench/extract_speed.py [--dataset ml-1m] [--naive-items 300] [--batch-size 32]
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch

from recxplore import config
from recxplore.cache import home_dir
from recxplore.data.prepare import prepare
from recxplore.extract.encode import encode, tokenize
from recxplore.llm import models
from recxplore.text.items import item_texts


def matmul_peak(dtype: torch.dtype, n: int = 4096, reps: int = 5) -> float:
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    torch.mm(a, b)  # warm-up
    best = float("inf")
    for _ in range(reps):
        start = time.perf_counter()
        torch.mm(a, b)
        best = min(best, time.perf_counter() - start)
    return 2 * n**3 / best


def timed_encode(loaded, ids, batch_size):
    start = time.perf_counter()
    emb = encode(
        loaded,
        ids,
        pooling="mean",
        layer=-1,
        batch_size=batch_size,
        padding_side="right",
        device=torch.device("cpu"),
    )
    return emb, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--dataset", default="ml-1m")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--naive-items", type=int, default=300)
    parser.add_argument("--limit", type=int, help="only the first N items (quick check)")
    args = parser.parse_args()

    cfg = config.load(None, [f"data.name={args.dataset}"])
    ds, _ = prepare(cfg.data, home_dir())
    texts = item_texts(ds, cfg.text)[1:][: args.limit]
    models_dir = home_dir() / "models"
    report: dict[str, float] = {"items": len(texts), "threads": torch.get_num_threads()}

    report["peak_fp32_gflops"] = matmul_peak(torch.float32) / 1e9
    report["peak_bf16_gflops"] = matmul_peak(torch.bfloat16) / 1e9

    fp32 = models.load("smollm2-135m", models_dir=models_dir, dtype="float32")
    ids = tokenize(fp32, texts)
    tokens = sum(len(x) for x in ids)
    params = sum(p.numel() for p in fp32.model.parameters())
    non_embedding = params - fp32.model.get_input_embeddings().weight.numel()
    emb32, t32 = timed_encode(fp32, ids, args.batch_size)
    report.update(
        tokens=tokens,
        mean_tokens=tokens / len(ids),
        fp32_seconds=t32,
        fp32_items_per_s=len(ids) / t32,
        fp32_tokens_per_s=tokens / t32,
    )
    report["fp32_gflops"] = 2 * params * tokens / t32 / 1e9
    report["fp32_fraction_of_peak"] = report["fp32_gflops"] / report["peak_fp32_gflops"]
    report["fp32_fraction_of_peak_non_embedding"] = (
        2 * non_embedding * tokens / t32 / 1e9 / report["peak_fp32_gflops"]
    )

    n = min(args.naive_items, len(ids))
    start = time.perf_counter()
    for x in ids[:n]:
        encode(
            fp32,
            [x],
            pooling="mean",
            layer=-1,
            batch_size=1,
            padding_side="right",
            device=torch.device("cpu"),
        )
    naive = (time.perf_counter() - start) / n
    report["naive_items_per_s"] = 1 / naive
    report["batched_speedup_over_naive"] = report["fp32_items_per_s"] * naive
    del fp32

    bf16 = models.load("smollm2-135m", models_dir=models_dir, dtype="bfloat16")
    emb16, t16 = timed_encode(bf16, ids, args.batch_size)
    cos = (emb32 * emb16).sum(1) / (np.linalg.norm(emb32, axis=1) * np.linalg.norm(emb16, axis=1))
    report.update(
        bf16_seconds=t16,
        bf16_items_per_s=len(ids) / t16,
        bf16_speedup_over_fp32=t32 / t16,
        bf16_min_cosine=float(cos.min()),
        bf16_mean_cosine=float(cos.mean()),
    )

    print(
        json.dumps(
            {k: round(v, 4) if isinstance(v, float) else v for k, v in report.items()}, indent=1
        )
    )
    print(
        f"\nfp32: {report['fp32_items_per_s']:.1f} items/s, {report['fp32_gflops']:.1f} GFLOP/s "
        f"= {100 * report['fp32_fraction_of_peak']:.0f}% of the {report['peak_fp32_gflops']:.0f}"
        f" GFLOP/s peak (target >= 70%)"
    )
    print(
        f"bf16: {report['bf16_speedup_over_fp32']:.2f} x fp32 (target >= 1.6), min cosine "
        f"{report['bf16_min_cosine']:.4f} (target >= 0.99)"
    )
    print(f"batched vs one-at-a-time: {report['batched_speedup_over_naive']:.1f} x")


if __name__ == "__main__":
    main()
