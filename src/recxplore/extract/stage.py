"""``extract``: dataset item texts -> embedding store, cached by text, extractor and dataset.

Shards are item-index ranges written one by one into the artifact's partial folder: an
interrupted extraction resumes from the last finished shard and, because each shard's batches
depend only on its own rows, ends byte-identical to an uninterrupted run. Under several
processes (``RANK`` / ``WORLD_SIZE`` set, e.g. by torchrun) process r writes shards k with
k % WORLD_SIZE == r; the process that finds every shard present publishes the store.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from recxplore.cache import Artifact, artifact_key, home_dir, sha256_file
from recxplore.config import Config
from recxplore.data.dataset import Dataset
from recxplore.data.prepare import prepare
from recxplore.errors import RecxploreError
from recxplore.extract import models
from recxplore.extract.encode import encode, tokenize
from recxplore.extract.static import tfidf_svd
from recxplore.extract.store import shard_path, shard_ranges, write_shard
from recxplore.text.items import item_texts, text_identity, text_settings
from recxplore.text.rewrite import final_texts
from recxplore.train.loop import resolve_device

log = logging.getLogger(__name__)

NOT_IN_KEY = ("device", "offline", "trust_remote_code")  # where it runs, not what it computes


class ExtractError(RecxploreError):
    """Item texts or settings the extractor cannot embed."""


def _check_texts(ds: Dataset, texts: list[str], attributes: Any) -> None:
    empty = [i for i in range(1, len(texts)) if not texts[i].strip()]
    if empty:
        first = empty[0]
        raise ExtractError(f"{ds.name}: {len(empty)} item(s) have an empty text, e.g. item "
                           f"{first} (id {ds.item_ids[first - 1]!r}, attributes "
                           f"{sorted(ds.item_meta[first]) or 'none'}): none of text.attributes="
                           f"{attributes} has a value; choose attributes the items have")


def _check_lengths(ds: Dataset, ids: list[list[int]], max_tokens: int | None, truncate: bool,
                   context: int | None) -> list[list[int]]:
    if max_tokens is None:
        max_tokens = min(context or 512, 512)
    elif context is not None and max_tokens > context:
        raise ExtractError(f"extract.max_tokens={max_tokens} exceeds the model's context of "
                           f"{context} tokens; lower it")
    lengths = np.array([len(x) for x in ids])
    too_long = np.flatnonzero(lengths > max_tokens)
    if len(too_long) and not truncate:
        i = int(too_long[0])
        raise ExtractError(f"{ds.name}: {len(too_long)} item text(s) exceed extract.max_tokens="
                           f"{max_tokens}, e.g. item {i + 1} (id {ds.item_ids[i]!r}) with "
                           f"{lengths[i]} tokens; raise extract.max_tokens, lower "
                           f"text.max_chars, or set extract.truncate=true")
    return [x[:max_tokens] for x in ids]


def store_key(cfg: Config, dataset_key: str, identity: dict[str, Any]) -> str:
    ex = {k: v for k, v in dataclasses.asdict(cfg.extract).items() if k not in NOT_IN_KEY}
    return artifact_key("extract", {"text": text_identity(cfg), "extract": ex, "model": identity},
                        (dataset_key,))


def extract_features(cfg: Config, progress: bool = True, fresh: bool = False
                     ) -> tuple[Path, dict[str, Any]]:
    """Build (or reuse) the store for ``cfg``; return its path and a summary."""
    home = home_dir(cfg.paths.home)
    ex = cfg.extract
    ds, data_art = prepare(cfg.data, home)
    settings = text_settings(cfg.text, cfg.data.name)
    _check_texts(ds, item_texts(ds, cfg.text), settings["attributes"])
    static = ex.model in models.STATIC_ALIASES
    models_dir = home / "models"
    identity = {"static": ex.model} if static else models.resolve(ex.model, models_dir)[1]
    adapters: list[Path] = []
    key_identity = identity
    if cfg.tune.stages or cfg.tune.adapter:
        from recxplore.tune.stage import tune_chain

        adapters, adapter_keys, _ = tune_chain(cfg, progress=progress)
        key_identity = {**identity, "adapters": adapter_keys}
    art = Artifact(home / "cache", "embeddings", store_key(cfg, data_art.key, key_identity))
    rows = ds.n_items + 1
    if art.done and not fresh:
        manifest = art.manifest()
        return art.path, {"path": str(art.path), "rows": rows, "dim": manifest["dim"],
                          "seconds": 0.0, "items_per_second": None, "cached": True}
    folder = art.begin(fresh=fresh)
    ranges = shard_ranges(rows, ex.shard_size)
    rank, world = int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))
    todo = [k for k in range(len(ranges)) if k % world == rank
            and not shard_path(folder, k).is_file()]
    started = time.perf_counter()
    done_items = 0
    texts = final_texts(ds, cfg, progress) if todo else []  # rewriting only when embedding
    if todo and static:
        matrix = tfidf_svd(texts[1:], ex.static_dim)
        matrix = np.vstack([np.zeros((1, matrix.shape[1]), np.float32), matrix])
        for k in todo:
            start, stop = ranges[k]
            write_shard(folder, k, np.arange(start, stop), matrix[start:stop])
        done_items = rows - 1
    elif todo:
        device = resolve_device(ex.device, "extract.device")
        if ex.dtype == "float16" and device.type == "cpu":
            raise ExtractError("extract.dtype=float16 needs a GPU; on a CPU use bfloat16 (fast "
                               "where the CPU has bf16 instructions) or float32")
        loaded = models.load(ex.model, models_dir=models_dir, dtype=ex.dtype, device=str(device),
                             offline=ex.offline, trust_remote_code=ex.trust_remote_code)
        if adapters:
            from recxplore.tune.lora import apply_adapters

            loaded.model = apply_adapters(loaded.model, adapters, identity, cfg.tune.merge)
        ids = tokenize(loaded, texts[1:], pooling=ex.pooling, eol_template=ex.eol_template)
        ids = [[]] + _check_lengths(ds, ids, ex.max_tokens, ex.truncate, loaded.context)
        total = sum(min(stop, rows) - max(start, 1) for start, stop in (ranges[k] for k in todo))
        bar = tqdm(total=total, desc=f"extract {ex.model} ({ex.pooling})", unit="item",
                   disable=not progress)
        for k in todo:
            start, stop = ranges[k]
            items = list(range(max(start, 1), stop))
            emb = encode(loaded, [ids[i] for i in items], pooling=ex.pooling, layer=ex.layer,
                         batch_size=ex.batch_size, padding_side=ex.padding_side, device=device,
                         on_batch=bar.update)
            if start == 0:  # row 0 is padding: zeros
                items = [0] + items
                emb = np.vstack([np.zeros((1, emb.shape[1]), np.float32), emb])
            write_shard(folder, k, np.asarray(items), emb)
            done_items += len(items)
        bar.close()
    seconds = time.perf_counter() - started
    if not all(shard_path(folder, k).is_file() for k in range(len(ranges))):
        log.info("rank %d finished its shards; another process publishes the store", rank)
        return folder, {"path": str(folder), "rows": rows, "dim": None,
                        "seconds": round(seconds, 3), "items_per_second": None, "cached": False}
    from safetensors import safe_open

    with safe_open(str(shard_path(folder, 0)), "np") as f:
        dim = int(f.get_slice("embeddings").get_shape()[1])
    shards = [{"file": shard_path(folder, k).name, "start": s, "stop": e,
               "sha256": sha256_file(shard_path(folder, k))} for k, (s, e) in enumerate(ranges)]
    art.publish({"dataset": ds.name, "item_fingerprint": ds.item_fingerprint, "rows": rows,
                 "dim": dim, "dtype": "float32", "compute_dtype": ex.dtype,
                 "extractor": ex.model, "model_identity": key_identity, "pooling": ex.pooling,
                 "layer": ex.layer, "text": settings, "shards": shards})
    return art.path, {"path": str(art.path), "rows": rows, "dim": dim,
                      "seconds": round(seconds, 3),
                      "items_per_second": round(done_items / seconds, 2) if seconds else None,
                      "cached": False}
