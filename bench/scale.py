"""Every stage on a generated catalogue of N items: wall time, peak RSS and growth with N.

The catalogue is generated, not real: a RecBole atomic dataset (``shop.inter``, ``shop.item``)
of N items with short attribute texts (a title of made-up words, a brand, two categories, a
price) and 10,000 users whose interactions follow a Zipf popularity (exponent 1.0); every item
occurs at least once, and there are max(3 N, 20 per user) interactions. It measures cost, not
quality: the sequences carry no signal beyond popularity.

Each stage runs in its own process through the library (so its peak RSS is its own, read from
the kernel's rusage of that process), in this order, the cache carrying each stage's output to
the next:

- prepare: read the atomic files, preprocess, split (``data.filter=none``: every item stays);
- extract <model>: the item texts through the extractor into the sharded store;
- reduce <model>: PCA to 64 dimensions fitted on a sample of 50,000 items;
- train id / train id-sparse / train <model>: one epoch of SASRec (ID-only; ID-only with
  ``train.sparse_items``; or the reduced features through a linear adapter, ``replace``) with
  in-batch negatives and the logQ correction, then the validation and test evaluation of the
  finished run;
- evaluate id: full ranking of the 10,000 test users over all N items (chunked) and over 100
  sampled negatives, from the trained checkpoint.

Targets (issue 23): peak RSS <= 8 GB for every stage at N = 1M; time from 100k to 1M grows at
most 12x per stage.

Usage: python bench/scale.py [--sizes 10000 100000 1000000] [--extractors tfidf-svd minilm-l6]
       [--smollm-max 10000] [--work /tmp/recxplore-scale] [--out results/scale/scale.json]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

USERS = 10_000
SYLLABLES = [c + v for c in "bdfgklmnprstvz" for v in "aeiou"]


def words(rng: np.random.Generator, n: int) -> list[str]:
    """``n`` distinct made-up words of two or three syllables."""
    out: set[str] = set()
    while len(out) < n:
        parts = rng.integers(0, len(SYLLABLES), size=(n, 3))
        lengths = rng.integers(2, 4, size=n)
        out.update("".join(SYLLABLES[p] for p in row[:k]) for row, k in zip(parts, lengths))
    return sorted(out)[:n]


def generate(folder: Path, n_items: int, seed: int = 0) -> dict[str, int]:
    """Write ``shop.inter`` and ``shop.item`` for ``n_items`` items into ``folder``."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    vocabulary = words(rng, 5000)
    brands = [w.capitalize() for w in words(rng, 2000)]
    categories = [w.capitalize() for w in words(rng, 300)]
    n_inter = max(3 * n_items, 20 * USERS)
    popularity = 1.0 / np.arange(1, n_items + 1)  # Zipf, exponent 1
    items = np.concatenate(  # every item once, then draws by popularity
        [
            rng.permutation(n_items),
            rng.choice(n_items, size=n_inter - n_items, p=popularity / popularity.sum()),
        ]
    )
    users = rng.integers(0, USERS, size=n_inter)
    stamps = rng.permutation(n_inter)
    with open(folder / "shop.inter", "w", encoding="utf-8") as f:
        f.write("user_id:token\titem_id:token\ttimestamp:float\n")
        for start in range(0, n_inter, 100_000):
            stop = start + 100_000
            f.writelines(
                f"u{u}\ti{i}\t{t}\n"
                for u, i, t in zip(users[start:stop], items[start:stop], stamps[start:stop])
            )
    title_words = rng.integers(0, len(vocabulary), size=(n_items, 4))
    title_len = rng.integers(2, 5, size=n_items)
    brand = rng.integers(0, len(brands), size=n_items)
    cats = rng.integers(0, len(categories), size=(n_items, 2))
    prices = np.round(rng.lognormal(3.0, 0.8, size=n_items), 2)
    with open(folder / "shop.item", "w", encoding="utf-8") as f:
        f.write("item_id:token\ttitle:token_seq\tbrand:token\tcategories:token_seq\tprice:float\n")
        for i in range(n_items):
            title = " ".join(vocabulary[w] for w in title_words[i, : title_len[i]]).capitalize()
            cat = f"{categories[cats[i, 0]]} {categories[cats[i, 1]]}"
            f.write(f"i{i}\t{title}\t{brands[brand[i]]}\t{cat}\t{prices[i]}\n")
    return {"items": n_items, "users": USERS, "interactions": n_inter}


def overrides(work: Path, n_items: int, model: str) -> list[str]:
    """The settings of one stage; ``model`` is an extractor, ``id``, or ``id-sparse`` (the ID
    table on sparse gradients)."""
    feature = not model.startswith("id")
    sparse = ["train.sparse_items=true"] if model == "id-sparse" else []
    return sparse + [
        "data.name=atomic:shop",
        f"data.data_dir={work / f'raw-{n_items}'}",
        "data.filter=none",
        f"paths.home={work / 'home'}",
        f"extract.model={model if feature else 'tfidf-svd'}",
        f"adapt.fusion={'replace' if feature else 'id'}",
        "adapt.adapter=linear",
        "adapt.pca=64",
        "adapt.pca_sample=50000",
        "train.loss=in_batch",
        "train.epochs=1",
        "train.batch_size=128",
        "model.max_len=50",
    ]


def child(stage: str, settings: list[str]) -> dict[str, Any]:
    """Run one stage in this process (the parent measures it)."""
    from recxplore import config, pipeline
    from recxplore.cache import home_dir
    from recxplore.data.prepare import prepare

    cfg = config.load(None, settings)
    home = home_dir(cfg.paths.home)
    if stage == "prepare":
        ds, _ = prepare(cfg.data, home, fresh=True)
        return {"items": ds.n_items, "users": ds.n_users}
    if stage == "extract":
        _, _, _, store = pipeline.features(cfg, progress=False, fresh=True)
        return {"dim": store.dim}
    if stage == "reduce":
        import shutil

        shutil.rmtree(home / "cache" / "reduced", ignore_errors=True)  # measured, not read
        ds, art = prepare(cfg.data, home)
        inputs = pipeline.item_inputs(cfg, ds, art.key, progress=False)
        assert inputs.features is not None
        return {"dim": int(inputs.features.shape[1])}
    if stage == "train":
        results = pipeline.train(cfg, progress=False, fresh=True)
        timing = results["timing"]
        return {
            "epoch_seconds": timing["seconds_per_epoch"],
            "test_ndcg@10": results["metrics"]["test"]["full"]["NDCG@10"],
        }
    if stage == "evaluate":
        return evaluate_run(cfg)
    raise SystemExit(f"unknown stage {stage!r}")


def evaluate_run(cfg: Any) -> dict[str, Any]:
    import torch

    from recxplore import pipeline
    from recxplore.cache import home_dir
    from recxplore.data.prepare import prepare
    from recxplore.runtime import load_checkpoint
    from recxplore.train.loop import build_evaluations, evaluate
    from recxplore.train.run import build_model, run_artifact

    ds, art = prepare(cfg.data, home_dir(cfg.paths.home))
    inputs = pipeline.item_inputs(cfg, ds, art.key, progress=False)
    run = run_artifact(cfg, art.key, inputs)
    model = build_model(cfg, ds, inputs)
    model.load_state_dict(load_checkpoint(run.path / "best.pt"))
    _, test = build_evaluations(ds, cfg)
    started = time.perf_counter()
    metrics, _, _ = evaluate(model, test, cfg, torch.device("cpu"))
    return {
        "users": len(test.data),
        "rank_seconds": round(time.perf_counter() - started, 2),
        "test_ndcg@10": metrics["full"]["NDCG@10"],
    }


def measure(stage: str, settings: list[str]) -> dict[str, Any]:
    """Run ``stage`` in a child process: its wall seconds, its peak RSS (GB) and its report."""
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "2")}
    started = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, __file__, "--child", stage, *settings],
        stdout=subprocess.PIPE,
        env=env,
    )
    assert proc.stdout is not None
    out = proc.stdout.read().decode()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    seconds = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"stage {stage} failed (exit {proc.returncode}); settings {settings}")
    report = json.loads(out.strip().splitlines()[-1])
    return {
        "seconds": round(seconds, 1),
        "peak_rss_gb": round(usage.ru_maxrss / 2**20, 3),
        **report,
    }


def stages(extractors: list[str], smollm_max: int, n: int) -> list[tuple[str, str]]:
    """(stage, model) in running order for size ``n``."""
    models = [m for m in extractors if m != "smollm2-135m" or n <= smollm_max]
    plan = [("prepare", "id")]
    plan += [("extract", m) for m in models]
    plan += [("reduce", m) for m in models]
    plan += [("train", "id"), ("train", "id-sparse"), ("evaluate", "id")]
    plan += [("train", m) for m in models]
    return plan


def table(rows: list[dict[str, Any]], sizes: list[int]) -> str:
    """Stage x size: seconds, peak RSS, and the growth of seconds from the previous size."""
    names = list(dict.fromkeys(r["stage"] for r in rows))
    head = "| stage | " + " | ".join(f"N={n:,}: s, GB, growth" for n in sizes) + " |"
    lines = [head, "|" + "---|" * (len(sizes) + 1)]
    for name in names:
        cells, previous = [], None
        for n in sizes:
            found = [r for r in rows if r["stage"] == name and r["items"] == n]
            if not found:
                cells.append("not run")
                previous = None
                continue
            r = found[0]
            growth = f"{r['seconds'] / previous:.1f}x" if previous else "-"
            cells.append(f"{r['seconds']:.1f}, {r['peak_rss_gb']:.2f}, {growth}")
            previous = r["seconds"]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        print(json.dumps(child(sys.argv[2], sys.argv[3:])))
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--extractors", nargs="+", default=["tfidf-svd", "minilm-l6"])
    parser.add_argument("--smollm-max", type=int, default=10_000, help="largest N for smollm2")
    parser.add_argument("--work", type=Path, default=Path("/tmp/recxplore-scale"))
    parser.add_argument("--out", type=Path, default=None, help="JSON file for the rows")
    args = parser.parse_args()
    rows: list[dict[str, Any]] = []
    if args.out and args.out.is_file():  # resume: a measured (stage, size) is not run again
        rows = json.loads(args.out.read_text())["rows"]
    for n in args.sizes:
        folder = args.work / f"raw-{n}"
        if not (folder / "shop.item").is_file():
            print(f"generating N={n:,}: {generate(folder, n)}", flush=True)
        for stage, model in stages(args.extractors, args.smollm_max, n):
            name = f"{stage} {model}" if stage != "prepare" else stage
            if any(r["stage"] == name and r["items"] == n for r in rows):
                continue
            result = measure(stage, overrides(args.work, n, model))
            rows.append({"stage": name, "items": n, **result})
            print(f"N={n:,} {name}: {json.dumps(result)}", flush=True)
            if args.out:
                args.out.parent.mkdir(parents=True, exist_ok=True)
                args.out.write_text(json.dumps({"sizes": args.sizes, "rows": rows}, indent=1))
    print(table(rows, args.sizes))


if __name__ == "__main__":
    main()
