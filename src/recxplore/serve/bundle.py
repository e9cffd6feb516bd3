"""Serving bundles: a trained run exported into one folder that loads without the training
cache, the dataset or the LLM (``recxplore export RUN_DIR OUT``).

A bundle holds ``table.safetensors`` (every item's final vector, after adapter and fusion),
``backbone.safetensors`` (the sequential model without its item embedder), ``config.yaml``,
``items.json`` (index -> raw id and title) and ``manifest.json`` (format, origin, and the sha256
of every other file, verified on every load). A features model whose item vectors can be made
for a new item also holds what that takes (``recxplore.serve.new_items``): the item embedder's
weights, the catalogue's reduced features, the fitted reduction, the LoRA chain's files and the
extractor's identity. Everything is JSON, YAML or safetensors: loading never unpickles.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

import numpy as np
import torch
from safetensors.numpy import save_file as save_arrays
from safetensors.torch import load_file as load_tensors
from safetensors.torch import save_file as save_tensors

from recxplore import config as config_mod
from recxplore.adapt.item_embedder import FeatureEmbedder, ItemEmbedder
from recxplore.cache import home_dir, sha256_file
from recxplore.config import STATIC_EXTRACTORS, Config
from recxplore.errors import RecxploreError
from recxplore.registry import BACKBONES
from recxplore.serve.approximate import ApproximateIndex

if TYPE_CHECKING:
    from recxplore.adapt.inputs import ItemInputs
    from recxplore.data.dataset import Dataset

FORMAT = 1
MANIFEST = "manifest.json"
# fusions whose vector for an item never in training comes from its features alone, through
# weights that do not depend on which items the catalogue holds
NEW_ITEM_FUSIONS = ("replace", "add", "concat", "delta", "align")
# The largest difference, relative to the features' largest magnitude, between the run's reduced
# features and the refitted reduction's: float32 rounding through the projection, which BLAS
# does differently under another thread count, stays well below; a different fit does not.
REDUCTION_TOLERANCE = 1e-4


def relative_gap(refit: np.ndarray, features: np.ndarray) -> float:
    """The largest difference between ``refit`` and ``features``, relative to the features'
    largest magnitude (absolute differences grow with the features' scale)."""
    return float(np.abs(refit - features).max() / max(np.abs(features).max(), 1e-12))


class BundleError(RecxploreError):
    """A bundle that cannot be made, read or extended, and why."""


class TableItems(ItemEmbedder):
    """The exported item table as the backbone's item embedder."""

    table: torch.Tensor

    def __init__(self, table: torch.Tensor):
        super().__init__(table.shape[0] - 1, table.shape[1])
        self.register_buffer("table", table, persistent=False)

    def all_items(self) -> torch.Tensor:
        return self.table


@dataclass
class Bundle:
    path: Path
    config: Config
    manifest: dict[str, Any]
    items: list[dict[str, Any]]  # position i - 1 describes item index i
    index: dict[str, int]  # raw id -> item index
    table: torch.Tensor  # (n_items + 1, D)
    model: torch.nn.Module  # the backbone over ``table``, in eval mode
    approximate: Optional[ApproximateIndex] = None  # top-K from a graph, not every item

    @property
    def max_len(self) -> int:
        return self.config.model.max_len


def new_items_problem(cfg: Config, model: torch.nn.Module) -> Optional[str]:
    """Why a bundle of this run cannot embed new items, or None."""
    fusion = cfg.adapt.fusion
    if fusion == "id":
        return "an ID-only model has no vector for an item it never trained on"
    if fusion not in NEW_ITEM_FUSIONS or not isinstance(model.items, FeatureEmbedder):
        return (
            f"adapt.fusion={fusion} builds its item vectors from trained ID rows or from a "
            f"basis fitted on the whole catalogue; only {', '.join(NEW_ITEM_FUSIONS)} make a "
            f"new item's vector from its features alone"
        )
    if cfg.adapt.adapter == "pq":
        return "the pq adapter reads product-quantisation codes, which new items do not have"
    if cfg.extract.model in STATIC_EXTRACTORS:
        return f"extract.model={cfg.extract.model} embeds only the item texts it was fitted on"
    if cfg.text.noise != "none":
        return f"text.noise={cfg.text.noise} made the catalogue's texts noisier on purpose"
    if cfg.text.rewrite != "none":
        return f"text.rewrite={cfg.text.rewrite}: new items would need the rewriting LLM too"
    if cfg.extract.pool_span != "all":
        return "extract.pool_span=item trims affixes measured on the whole catalogue"
    return None


def export_bundle(run_dir: Path, out: Path) -> dict[str, Any]:
    """Write the bundle of the finished run ``run_dir`` into the new folder ``out``."""
    from recxplore.backbones.dual_view import DualView
    from recxplore.data.prepare import prepare
    from recxplore.pipeline import item_inputs
    from recxplore.runtime import load_checkpoint
    from recxplore.train.run import build_model

    run_dir, out = Path(run_dir), Path(out)
    if not (run_dir / "results.json").is_file() or not (run_dir / "best.pt").is_file():
        raise BundleError(
            f"{run_dir}: not a finished run (no results.json or best.pt); export a run folder "
            f"under <home>/runs/ that training finished"
        )
    if out.exists():
        raise BundleError(f"{out}: already exists; choose a new folder (nothing was written)")
    cfg = config_mod.load(str(run_dir / "config.yaml"), [])
    ds, data_art = prepare(cfg.data, home_dir(cfg.paths.home))
    inputs = item_inputs(cfg, ds, data_art.key, progress=False)
    model = build_model(cfg, ds, inputs)
    if isinstance(model, DualView):
        raise BundleError(
            f"{run_dir}: an LLM-ESR model scores with two item views and its own encoder per "
            f"view; export supports single-view models (every other fusion)"
        )
    state = load_checkpoint(run_dir / "best.pt", torch.device("cpu"))
    model.load_state_dict(state)
    model.eval()
    with torch.no_grad():
        table = model.items.all_items().float().contiguous()
    partial = out.with_name(out.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    try:
        manifest = _write_bundle(partial, run_dir, cfg, ds, inputs, model, state, table)
    except BaseException:  # nothing half-written is left behind
        shutil.rmtree(partial, ignore_errors=True)
        raise
    partial.rename(out)
    return {"bundle": str(out), **{k: v for k, v in manifest.items() if k != "files"}}


def _write_bundle(
    partial: Path,
    run_dir: Path,
    cfg: Config,
    ds: Dataset,
    inputs: ItemInputs,
    model: torch.nn.Module,
    state: dict[str, torch.Tensor],
    table: torch.Tensor,
) -> dict[str, Any]:
    """Every file of the bundle of ``run_dir`` into the folder ``partial``; its manifest."""
    from recxplore.adapt.reduce import fitted_reduction
    from recxplore.extract.store import open_store
    from recxplore.extract.users import item_name
    from recxplore.pipeline import features

    save_tensors({"items": table}, str(partial / "table.safetensors"))
    backbone = {k: v.contiguous() for k, v in state.items() if not k.startswith("items.")}
    save_tensors(backbone, str(partial / "backbone.safetensors"))
    (partial / "config.yaml").write_text(config_mod.dump(cfg), encoding="utf-8")
    items = [
        {"index": i, "id": str(ds.item_ids[i - 1]), "title": item_name(ds.item_meta[i], i)}
        for i in range(1, ds.n_items + 1)
    ]
    (partial / "items.json").write_text(json.dumps(items, ensure_ascii=False), encoding="utf-8")
    problem = new_items_problem(cfg, model)
    manifest: dict[str, Any] = {
        "format": FORMAT,
        "run": run_dir.name,
        "dataset": ds.name,
        "items": ds.n_items,
        "added_items": 0,
        "dim": int(table.shape[1]),
        "backbone": cfg.model.backbone,
        "fusion": cfg.adapt.fusion,
        "new_items": problem or "supported",
    }
    if problem is None:
        assert inputs.features is not None and isinstance(model.items, FeatureEmbedder)
        _, _, chain, store = features(cfg, progress=False)
        raw = open_store(store.path, ds, {"pooling": cfg.extract.pooling}).embeddings
        save_arrays(
            {
                k: np.ascontiguousarray(v, dtype=np.float64)  # safetensors writes memory order
                for k, v in fitted_reduction(raw, ds, cfg.adapt).arrays().items()
            },
            str(partial / "reduction.safetensors"),
        )
        again = load_reduction(partial).apply(raw[1:])  # what add-items will read
        gap = relative_gap(again, inputs.features[1:])
        if gap > REDUCTION_TOLERANCE:
            raise BundleError(
                f"{run_dir}: the refitted reduction does not reproduce the run's features "
                f"(largest difference {gap:.2e} of their largest magnitude); delete the cached "
                f"reduced features under <home>/cache/reduced and rerun"
            )
        seen = inputs.seen if inputs.seen is not None else np.ones(ds.n_items + 1, bool)
        save_arrays(
            {
                "features": inputs.features.astype(np.float32),
                "seen": seen.astype(np.uint8),
                "feature_scale": model.items.feature_scale.numpy().reshape(1),
            },
            str(partial / "features.safetensors"),
        )
        embedder = {k: v.contiguous() for k, v in state.items() if k.startswith("items.")}
        save_tensors(embedder, str(partial / "embedder.safetensors"))
        for i, folder in enumerate(chain.folders):
            target = partial / "adapters" / str(i)
            target.mkdir(parents=True)
            for name in ("adapter_model.safetensors", "adapter_config.json"):
                shutil.copy2(Path(folder) / name, target / name)
        from recxplore.llm import models

        manifest["extractor"] = {
            "model": cfg.extract.model,
            "identity": models.resolve(cfg.extract.model, home_dir(cfg.paths.home) / "models")[1],
            "adapters": len(chain.folders),
        }
    _write_manifest(partial, manifest)
    return manifest


def load_reduction(folder: Path) -> Any:
    from safetensors.numpy import load_file

    from recxplore.adapt.reduce import Reduction

    stored = load_file(str(Path(folder) / "reduction.safetensors"))
    return Reduction(stored["mean"], stored["components"], stored["scale"])


def _write_manifest(folder: Path, manifest: dict[str, Any]) -> None:
    files = sorted(
        str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file() and p.name != MANIFEST
    )
    manifest["files"] = {name: sha256_file(folder / name) for name in files}
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=1), encoding="utf-8")


def read_manifest(path: Path) -> dict[str, Any]:
    """The bundle's manifest, with every file checked against its checksum."""
    path = Path(path)
    try:
        manifest = json.loads((path / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as err:
        raise BundleError(
            f"{path / MANIFEST}: unreadable ({err}); is {path} a folder made by recxplore export?"
        ) from None
    if manifest.get("format") != FORMAT:
        raise BundleError(
            f"{path}: bundle format {manifest.get('format')!r}, this recxplore reads {FORMAT}; "
            f"export the run again"
        )
    for name, digest in manifest.get("files", {}).items():
        file = path / name
        if not file.is_file() or sha256_file(file) != digest:
            raise BundleError(
                f"{file}: missing or altered since export (its checksum differs from "
                f"{MANIFEST}); refusing to load it: export the run again"
            )
    return manifest


def load_bundle(path: Path, approximate: bool = False, ef_search: int = 256) -> Bundle:
    """The bundle at ``path``, verified; with ``approximate``, top-K comes from an HNSW graph
    over its table searched with ``ef_search`` candidates (``recxplore.serve.approximate``)."""
    path = Path(path)
    manifest = read_manifest(path)
    cfg = config_mod.load(str(path / "config.yaml"), [])
    table = load_tensors(str(path / "table.safetensors"))["items"]
    items = json.loads((path / "items.json").read_text(encoding="utf-8"))
    torch.manual_seed(0)  # nothing random survives loading; the seed only keeps builds quiet
    model = BACKBONES[cfg.model.backbone](TableItems(table), cfg.model)
    model.load_state_dict(load_tensors(str(path / "backbone.safetensors")))
    model.eval()
    index = {item["id"]: item["index"] for item in items}
    graph = ApproximateIndex.build(table, ef_search) if approximate else None
    return Bundle(path, cfg, manifest, items, index, table, model, graph)
