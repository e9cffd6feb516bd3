"""``extract``: dataset item texts -> embedding store, cached by text, extractor and dataset.

Shards are item-index ranges written one by one into the artifact's partial folder: an
interrupted extraction resumes from the last finished shard and, because each shard's batches
depend only on its own rows, ends byte-identical to an uninterrupted run. Under several
processes (``RANK`` / ``WORLD_SIZE`` set, e.g. by torchrun) process r writes shards k with
k % WORLD_SIZE == r; the process that finds every shard present publishes the store.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import numpy as np
import torch
from tqdm.auto import tqdm

from recxplore.cache import Artifact, home_dir, sha256_file, stage_key
from recxplore.config import STATIC_EXTRACTORS, Config, key_settings
from recxplore.data.dataset import Dataset
from recxplore.errors import RecxploreError
from recxplore.extract.encode import encode, tokenize
from recxplore.extract.pooling import shared_affixes
from recxplore.extract.static import tfidf_svd
from recxplore.extract.store import shard_path, shard_ranges, write_shard
from recxplore.llm import models
from recxplore.llm.lora import ITEMS_FILE, apply_adapters
from recxplore.runtime import device_type, resolve_device, resolve_precision
from recxplore.text.items import item_texts, text_settings
from recxplore.text.rewrite import final_texts, text_identity
from recxplore.world import world

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class StoreSummary:
    """What ``extract`` made: the store's folder and how long embedding took."""

    path: Path
    rows: int
    dim: Optional[int]  # None on a process that left publishing to another
    seconds: float  # the whole stage: rewriting, model loading, embedding
    items_per_second: Optional[float]  # embedding alone
    cached: bool
    items_per_second_with_loading: Optional[float] = None  # over ``seconds``

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "rows": self.rows,
            "dim": self.dim,
            "seconds": self.seconds,
            "items_per_second": self.items_per_second,
            "items_per_second_with_loading": self.items_per_second_with_loading,
            "cached": self.cached,
        }


class ExtractError(RecxploreError):
    """Item texts or settings the extractor cannot embed."""


def _check_texts(ds: Dataset, texts: list[str], attributes: Any) -> None:
    empty = [i for i in range(1, len(texts)) if not texts[i].strip()]
    if empty and not any(ds.item_meta[1:]):
        raise ExtractError(
            f"{ds.name}: no item has any attribute, so there is no text to embed: its item "
            f"file is missing, or its item ids match none of the interactions' (check that "
            f"both files use the same ids); or train without features (adapt.fusion=id)"
        )
    if empty:
        first = empty[0]
        raise ExtractError(
            f"{ds.name}: {len(empty)} item(s) have an empty text, e.g. item "
            f"{first} (id {ds.item_ids[first - 1]!r}, attributes "
            f"{sorted(ds.item_meta[first]) or 'none'}): none of text.attributes="
            f"{attributes} has a value; choose attributes the items have"
        )


def check_lengths(
    where: str,
    item_ids: Sequence[str],
    ids: list[list[int]],
    max_tokens: int | None,
    truncate: bool,
    context: int | None,
) -> list[list[int]]:
    """The texts' token ids cut to ``extract.max_tokens``, or refused when too long and not
    ``truncate`` (``where`` and ``item_ids`` name them in the message)."""
    if max_tokens is None:
        max_tokens = min(context or 512, 512)
    elif context is not None and max_tokens > context:
        raise ExtractError(
            f"extract.max_tokens={max_tokens} exceeds the model's context of "
            f"{context} tokens; lower it"
        )
    lengths = np.array([len(x) for x in ids])
    too_long = np.flatnonzero(lengths > max_tokens)
    if len(too_long) and not truncate:
        i = int(too_long[0])
        raise ExtractError(
            f"{where}: {len(too_long)} item text(s) exceed extract.max_tokens="
            f"{max_tokens}, e.g. item {i + 1} (id {item_ids[i]!r}) with "
            f"{lengths[i]} tokens; raise extract.max_tokens, lower "
            f"text.max_chars, or set extract.truncate=true"
        )
    return [x[:max_tokens] for x in ids]


def compute_dtype(cfg: Config) -> str:
    """``extract.dtype`` as the extractor runs it (``auto`` resolved for its device; a static
    extractor computes in float32)."""
    if cfg.extract.model in STATIC_EXTRACTORS:
        return "float32"
    return resolve_precision(cfg.extract.dtype, device_type(cfg.extract.device))


def store_key(cfg: Config, dataset_key: str, identity: dict[str, Any]) -> str:
    settings = {**key_settings(cfg.extract), "dtype": compute_dtype(cfg)}
    return stage_key(
        "extract",
        {"text": text_identity(cfg), "extract": settings, "model": identity},
        (dataset_key,),
    )


def prompt_template(cfg: Config) -> str:
    """The wrapper the pooling puts around each text (``{text}`` alone when it has none)."""
    return str(getattr(cfg.extract.options(cfg.extract.pooling), "template", "{text}"))


def extract_features(
    cfg: Config,
    ds: Dataset,
    dataset_key: str,
    adapters: list[Path],
    adapter_keys: list[str],
    progress: bool = True,
    fresh: bool = False,
) -> StoreSummary:
    """Build (or reuse) the embedding store of ``ds``'s item texts, the extractor tuned by
    ``adapters`` (LoRA folders, in order, with their cache keys)."""
    home = home_dir(cfg.paths.home)
    ex = cfg.extract
    settings = text_settings(cfg.text, ds.name)
    _check_texts(ds, item_texts(ds, cfg.text), settings["attributes"])
    static = ex.model in STATIC_EXTRACTORS
    identity = {"static": ex.model} if static else models.resolve(ex.model, home / "models")[1]
    key_identity = {**identity, "adapters": list(adapter_keys)} if adapter_keys else identity
    art = Artifact(home / "cache", "embeddings", store_key(cfg, dataset_key, key_identity))
    rows = ds.n_items + 1

    def cached() -> StoreSummary:
        return StoreSummary(art.path, rows, art.manifest()["dim"], 0.0, None, cached=True)

    def build() -> StoreSummary:
        return _build(art, cfg, ds, adapters, identity, key_identity, rank, size, progress, fresh)

    place = world()
    rank, size = place.rank, place.size
    if size > 1:  # the ranks of one job share the partial folder by shard, by design
        if art.done and not fresh:
            return cached()
        summary = build()
        while summary.dim is None and not art.done:  # another rank publishes: the store is
            time.sleep(0.5)  # complete only then, for what comes after (training, under torchrun)
        return cached() if summary.dim is None else summary
    return art.reuse_or_build(cached, build, fresh)  # separate processes: one builds


def _build(
    art: Artifact,
    cfg: Config,
    ds: Dataset,
    adapters: list[Path],
    identity: dict[str, Any],
    key_identity: dict[str, Any],
    rank: int,
    world: int,
    progress: bool,
    fresh: bool,
) -> StoreSummary:
    ex, rows = cfg.extract, ds.n_items + 1
    models_dir = home_dir(cfg.paths.home) / "models"
    settings = text_settings(cfg.text, ds.name)
    folder = art.begin(fresh=fresh)
    ranges = shard_ranges(rows, ex.shard_size)
    todo = [
        k for k in range(len(ranges)) if k % world == rank and not shard_path(folder, k).is_file()
    ]
    started = time.perf_counter()
    texts = final_texts(ds, cfg, progress) if todo else []  # rewriting only when embedding
    done_items, embed_seconds = 0, 0.0
    learned = learned_item_vectors(adapters)
    if todo and learned is not None:  # the chain learned the vectors itself (SAID)
        done_items = _store_rows(learned, folder, ranges, todo)
        embed_seconds = time.perf_counter() - started
    elif todo and ex.model in STATIC_EXTRACTORS:
        done_items = _embed_static(cfg, texts, folder, ranges, todo)
        embed_seconds = time.perf_counter() - started
    elif todo:
        done_items, embed_seconds = _embed_neural(
            cfg, ds, texts, folder, ranges, todo, adapters, identity, models_dir, progress
        )
    seconds = time.perf_counter() - started
    # ranks finishing together: the first to find every shard publishes, under the lock (a
    # single process already holds it)
    with art.lock() if world > 1 else contextlib.nullcontext():
        if art.done:
            dim = art.manifest()["dim"]
            return StoreSummary(art.path, rows, dim, round(seconds, 3), None, cached=False)
        if not all(shard_path(folder, k).is_file() for k in range(len(ranges))):
            log.info("rank %d finished its shards; another process publishes the store", rank)
            return StoreSummary(folder, rows, None, round(seconds, 3), None, cached=False)
        dim = _publish(art, ds, cfg, ranges, key_identity, settings, round(seconds, 3))
    return StoreSummary(
        art.path,
        rows,
        dim,
        round(seconds, 3),
        round(done_items / embed_seconds, 2) if embed_seconds else None,
        cached=False,
        items_per_second_with_loading=round(done_items / seconds, 2) if seconds else None,
    )


def learned_item_vectors(adapters: list[Path]) -> Optional[np.ndarray]:
    """The item vectors the chain's last stage learned (SAID's), row 0 padding; None when it
    learned LoRA weights only, so the store is the tuned LLM's reading of each text."""
    if not adapters or not (adapters[-1] / ITEMS_FILE).is_file():
        return None
    from safetensors.numpy import load_file

    return load_file(str(adapters[-1] / ITEMS_FILE))["embeddings"]


def _store_rows(
    matrix: np.ndarray, folder: Path, ranges: list[tuple[int, int]], todo: list[int]
) -> int:
    for k in todo:
        start, stop = ranges[k]
        write_shard(folder, k, np.arange(start, stop), matrix[start:stop])
    return len(matrix) - 1


def _embed_static(
    cfg: Config, texts: list[str], folder: Path, ranges: list[tuple[int, int]], todo: list[int]
) -> int:
    matrix = tfidf_svd(texts[1:], cfg.extract.static_dim)
    matrix = np.vstack([np.zeros((1, matrix.shape[1]), np.float32), matrix])
    return _store_rows(matrix, folder, ranges, todo)


def load_extractor(cfg: Config, models_dir: Path) -> tuple[torch.device, models.LoadedModel]:
    """The configured extractor, on ``extract.device`` in its compute dtype."""
    ex = cfg.extract
    device = resolve_device(ex.device, "extract.device")
    dtype = compute_dtype(cfg)
    if dtype == "float16" and device.type == "cpu":
        raise ExtractError(
            "extract.dtype=float16 needs a GPU; on a CPU use bfloat16 (fast "
            "where the CPU has bf16 instructions) or float32"
        )
    loaded = models.load(
        ex.model,
        models_dir=models_dir,
        dtype=dtype,
        device=str(device),
        offline=ex.offline,
        trust_remote_code=ex.trust_remote_code,
    )
    return device, loaded


def _embed_neural(
    cfg: Config,
    ds: Dataset,
    texts: list[str],
    folder: Path,
    ranges: list[tuple[int, int]],
    todo: list[int],
    adapters: list[Path],
    identity: dict[str, Any],
    models_dir: Path,
    progress: bool,
) -> tuple[int, float]:
    ex = cfg.extract
    rows = ds.n_items + 1
    device, loaded = load_extractor(cfg, models_dir)
    if adapters:
        loaded.model = apply_adapters(loaded.model, adapters, identity, cfg.tune.merge)
    started = time.perf_counter()  # embedding only, after the model is loaded
    ids = tokenize(loaded, texts[1:], template=prompt_template(cfg))
    ids = [[]] + check_lengths(
        ds.name, ds.item_ids, ids, ex.max_tokens, ex.truncate, loaded.context
    )
    span = shared_affixes(ids[1:]) if ex.pool_span == "item" else (0, 0)
    total = sum(min(stop, rows) - max(start, 1) for start, stop in (ranges[k] for k in todo))
    bar = tqdm(
        total=total, desc=f"extract {ex.model} ({ex.pooling})", unit="item", disable=not progress
    )
    done_items = 0
    for k in todo:
        start, stop = ranges[k]
        items = list(range(max(start, 1), stop))
        emb = encode(
            loaded,
            [ids[i] for i in items],
            pooling=ex.pooling,
            layer=ex.layer,
            batch_size=ex.batch_size,
            padding_side=ex.padding_side,
            device=device,
            on_batch=bar.update,
            span=span,
        )
        if start == 0:  # row 0 is padding: zeros
            items = [0] + items
            emb = np.vstack([np.zeros((1, emb.shape[1]), np.float32), emb])
        write_shard(folder, k, np.asarray(items), emb)
        done_items += len(items)
    bar.close()
    return done_items, time.perf_counter() - started


def _publish(
    art: Artifact,
    ds: Dataset,
    cfg: Config,
    ranges: list[tuple[int, int]],
    key_identity: dict[str, Any],
    settings: dict[str, Any],
    seconds: float,
) -> int:
    from safetensors import safe_open

    folder, ex = art.partial, cfg.extract
    with safe_open(str(shard_path(folder, 0)), "np") as f:
        dim = int(f.get_slice("embeddings").get_shape()[1])
    shards = [
        {
            "file": shard_path(folder, k).name,
            "start": s,
            "stop": e,
            "sha256": sha256_file(shard_path(folder, k)),
        }
        for k, (s, e) in enumerate(ranges)
    ]
    art.publish(
        {
            "dataset": ds.name,
            "item_fingerprint": ds.item_fingerprint,
            "rows": ds.n_items + 1,
            "dim": dim,
            "dtype": "float32",
            "compute_dtype": compute_dtype(cfg),
            "extractor": ex.model,
            "model_identity": key_identity,
            "pooling": ex.pooling,
            "pool_span": ex.pool_span,
            "layer": ex.layer,
            "text": settings,
            "shards": shards,
            # this process's share of the stage (all of it, unless several processes shared it)
            "seconds": seconds,
        }
    )
    return dim
