"""Exact against approximate (faiss HNSW) top-K serving of one trained run, side by side.

Exports the run into a bundle, then answers the same histories (the last items of randomly drawn
users' training sequences) one at a time with the exact top-K (every item scored) and with the
HNSW graph (built once) at each ``--ef-search``, and prints: the seconds to load the bundle and
build its graph, the median and p99
latency of one history, and the recall of the exact top-K (the share of its items the graph
returns too).

Usage: python bench/approximate_topk.py RUN_DIR [--histories 300] [--k 10]
       [--ef-search 64 256] [--out results/scale/approximate_topk.json]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from recxplore.cache import home_dir
from recxplore.data.prepare import prepare
from recxplore.data.split import train_sequences
from recxplore.serve.bundle import export_bundle, load_bundle
from recxplore.serve.recommend import recommend


def answer(bundle, histories: list[list[str]], k: int) -> tuple[list[set[str]], np.ndarray]:
    found, seconds = [], []
    for history in histories:
        started = time.perf_counter()
        items = recommend(bundle, [history], k=k)[0]["items"]
        seconds.append(time.perf_counter() - started)
        found.append({r["id"] for r in items})
    return found, np.array(seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--histories", type=int, default=300)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--ef-search", type=int, nargs="+", default=[64, 256])
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    torch.set_num_threads(1)  # one history at a time, as a serving worker answers it
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bundle"
        export_bundle(args.run_dir, path)
        exact = load_bundle(path)
        cfg = exact.config
        ds, _ = prepare(cfg.data, home_dir(cfg.paths.home))
        rng = np.random.default_rng(0)
        seqs = train_sequences(ds)
        users = rng.choice(len(seqs), size=args.histories, replace=False)
        histories = [[ds.item_ids[i - 1] for i in seqs[u][-cfg.model.max_len :]] for u in users]
        want, exact_seconds = answer(exact, histories, args.k)
        rows = [
            {
                "search": "exact",
                "items": len(exact.items),
                "p50_ms": round(float(np.median(exact_seconds)) * 1e3, 2),
                "p99_ms": round(float(np.quantile(exact_seconds, 0.99)) * 1e3, 2),
            }
        ]
        started = time.perf_counter()
        graph = load_bundle(path, approximate=True)
        build = time.perf_counter() - started
        assert graph.approximate is not None
        for ef in args.ef_search:
            graph.approximate.ef_search = ef
            got, seconds = answer(graph, histories, args.k)
            recall = np.mean([len(w & g) / max(len(w), 1) for w, g in zip(want, got)])
            rows.append(
                {
                    "search": f"hnsw ef_search={ef}",
                    "items": len(exact.items),
                    "load_and_build_seconds": round(build, 1),
                    "p50_ms": round(float(np.median(seconds)) * 1e3, 2),
                    "p99_ms": round(float(np.quantile(seconds, 0.99)) * 1e3, 2),
                    f"recall@{args.k}": round(float(recall), 4),
                }
            )
    for row in rows:
        print(json.dumps(row))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({"run": str(args.run_dir), "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
