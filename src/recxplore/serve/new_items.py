"""New items in a bundle without retraining (``recxplore add-items BUNDLE ITEMS.jsonl``).

Each new item's attributes go the way the catalogue's went: the same text template, the same
extractor with the same LoRA chain and pooling, the same fitted reduction, then the run's own
item embedder, rebuilt over the catalogue and the new items with its trained weights. A new
item was never in training, so it gets what any such item gets (no ID part): its vector comes
from its text alone. The catalogue's rows are recomputed too and must equal the bundle's table,
which checks the whole path. The bundle is rewritten whole beside itself and swapped in, so an
interrupted call leaves the old bundle as it was.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.numpy import load_file, save_file
from safetensors.torch import load_file as load_tensors
from safetensors.torch import save_file as save_tensors

from recxplore.adapt.inputs import ItemInputs
from recxplore.cache import home_dir
from recxplore.extract.users import item_name
from recxplore.serve.bundle import (
    BundleError,
    _write_manifest,
    load_bundle,
    load_reduction,
    read_manifest,
)
from recxplore.text.flatten import flatten
from recxplore.text.items import text_settings


def read_new_items(path: Path, known: dict[str, int]) -> list[dict[str, Any]]:
    """One JSON object a line, each with an ``id`` the bundle does not hold yet."""
    items, seen = [], set()
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as err:
        raise BundleError(f"{path}: unreadable ({err})") from None
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except json.JSONDecodeError as err:
            raise BundleError(f"{path}:{number}: not JSON ({err.msg}); one object a line") from None
        if not isinstance(item, dict) or item.get("id") in (None, ""):
            raise BundleError(f"{path}:{number}: needs an object with an 'id' key")
        item_id = str(item["id"])
        if item_id in known or item_id in seen:
            raise BundleError(f"{path}:{number}: id {item_id!r} is already an item")
        seen.add(item_id)
        items.append({"id": item_id, "meta": {k: v for k, v in item.items() if k != "id"}})
    if not items:
        raise BundleError(f"{path}: no items; write one JSON object a line")
    return items


def add_items(bundle_path: Path, items_path: Path) -> dict[str, Any]:
    bundle_path = Path(bundle_path)
    bundle = load_bundle(bundle_path)
    manifest, cfg = bundle.manifest, bundle.config
    if manifest.get("new_items") != "supported":
        raise BundleError(f"{bundle_path}: cannot take new items: {manifest.get('new_items')}")
    new = read_new_items(items_path, bundle.index)
    started = time.perf_counter()
    settings = text_settings(cfg.text, manifest["dataset"])
    texts = [flatten(item["meta"], **settings) for item in new]
    empty = [item["id"] for item, text in zip(new, texts) if not text.strip()]
    if empty:
        raise BundleError(
            f"{items_path}: {len(empty)} item(s) have none of the attributes "
            f"{settings['attributes']} with a value, e.g. id {empty[0]!r}"
        )
    raw = embed_texts(bundle_path, manifest, cfg, texts, [item["id"] for item in new])
    reduced = load_reduction(bundle_path).apply(raw)
    table = _extended_table(bundle_path, cfg, reduced, bundle.table)
    seconds = time.perf_counter() - started
    _write_extended(bundle_path, manifest, bundle.items, new, table, reduced)
    return {
        "bundle": str(bundle_path),
        "added": len(new),
        "items": len(bundle.items) + len(new),
        "seconds": round(seconds, 3),
    }


def embed_texts(
    bundle_path: Path,
    manifest: dict[str, Any],
    cfg: Any,
    texts: list[str],
    item_ids: list[str],
) -> np.ndarray:
    """The new texts through the run's extractor, its LoRA chain and pooling: (n, d)."""
    from recxplore.extract.encode import encode, tokenize
    from recxplore.extract.stage import check_lengths, load_extractor, prompt_template
    from recxplore.llm import models
    from recxplore.llm.lora import apply_adapters

    ex = cfg.extract
    models_dir = home_dir(cfg.paths.home) / "models"
    identity = models.resolve(ex.model, models_dir)[1]
    if identity != manifest["extractor"]["identity"]:
        raise BundleError(
            f"extract.model={ex.model}: resolves to {identity}, but the bundle was made with "
            f"{manifest['extractor']['identity']}; install that model to add items"
        )
    device, loaded = load_extractor(cfg, models_dir)
    adapters = [bundle_path / "adapters" / str(i) for i in range(manifest["extractor"]["adapters"])]
    if adapters:
        loaded.model = apply_adapters(loaded.model, adapters, identity, cfg.tune.merge)
    ids = tokenize(loaded, texts, template=prompt_template(cfg))
    ids = check_lengths("new items", item_ids, ids, ex.max_tokens, ex.truncate, loaded.context)
    return encode(
        loaded,
        ids,
        pooling=ex.pooling,
        layer=ex.layer,
        batch_size=ex.batch_size,
        padding_side=ex.padding_side,
        device=device,
    )


def _extended_table(
    bundle_path: Path, cfg: Any, reduced: np.ndarray, table: torch.Tensor
) -> torch.Tensor:
    """The item embedder rebuilt over the catalogue and the new items: its whole table."""
    from recxplore.train.run import build_item_embedder

    stored = load_file(str(bundle_path / "features.safetensors"))
    features = np.concatenate([stored["features"], reduced])
    seen = np.concatenate([stored["seen"].astype(bool), np.zeros(len(reduced), bool)])
    n_items = len(features) - 1
    torch.manual_seed(0)
    inputs = ItemInputs(features=features, seen=seen)
    embedder = build_item_embedder(cfg, n_items, inputs)
    # scaled as the catalogue was when the run trained, not by the new matrix's variance
    scale = torch.from_numpy(stored["feature_scale"]).reshape(())
    embedder.features = torch.from_numpy(features).float() / scale
    state = {
        k.removeprefix("items."): v
        for k, v in load_tensors(str(bundle_path / "embedder.safetensors")).items()
    }
    own = embedder.state_dict()
    for name, value in state.items():  # per-item rows (IDs, deltas): none for the new items
        if name in own and own[name].shape != value.shape and value.shape[0] == table.shape[0]:
            grown = torch.zeros_like(own[name])
            grown[: value.shape[0]] = value
            state[name] = grown
    embedder.load_state_dict(state)
    embedder.eval()
    with torch.no_grad():
        out = embedder.all_items().float()
    worst = float((out[: table.shape[0]] - table).abs().max())
    if worst > 1e-4:
        raise BundleError(
            f"{bundle_path}: the rebuilt item embedder does not reproduce the bundle's table "
            f"(largest difference {worst:.2e}); export the run again with this recxplore"
        )
    return out.contiguous()


def _write_extended(
    bundle_path: Path,
    manifest: dict[str, Any],
    items: list[dict[str, Any]],
    new: list[dict[str, Any]],
    table: torch.Tensor,
    reduced: np.ndarray,
) -> None:
    fresh = bundle_path.with_name(bundle_path.name + ".adding")
    shutil.rmtree(fresh, ignore_errors=True)
    shutil.copytree(bundle_path, fresh)
    first = len(items) + 1
    added = [
        {
            "index": first + i,
            "id": item["id"],
            "title": item_name(item["meta"], first + i),
            "added": True,
        }
        for i, item in enumerate(new)
    ]
    (fresh / "items.json").write_text(
        json.dumps(items + added, ensure_ascii=False), encoding="utf-8"
    )
    save_tensors({"items": table}, str(fresh / "table.safetensors"))
    stored = load_file(str(bundle_path / "features.safetensors"))
    save_file(
        {
            "features": np.concatenate([stored["features"], reduced]).astype(np.float32),
            "seen": np.concatenate([stored["seen"], np.zeros(len(reduced), np.uint8)]),
            "feature_scale": stored["feature_scale"],
        },
        str(fresh / "features.safetensors"),
    )
    manifest = {k: v for k, v in manifest.items() if k != "files"}
    manifest["added_items"] = manifest.get("added_items", 0) + len(new)
    _write_manifest(fresh, manifest)
    read_manifest(fresh)  # what is swapped in loads
    old = bundle_path.with_name(bundle_path.name + ".old")
    shutil.rmtree(old, ignore_errors=True)
    bundle_path.rename(old)
    fresh.rename(bundle_path)
    shutil.rmtree(old)
