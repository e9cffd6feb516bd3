"""One training run in its own folder, cached by its resolved config and its dataset.

The folder (``<runs_dir>/<dataset>-<backbone>-<fusion>[-<adapter>]-<loss>-s<seed>-<key>``) holds
``config.yaml``, ``log.txt``, ``metrics.csv``, ``best.pt``, ``checkpoint.pt``, ``test_ranks.csv``
and ``results.json``. It is filled as ``<name>.partial`` and renamed when finished; an
interrupted run resumes from its checkpoint when the same command is run again, or, with
``finish_on``, on another device than the one it started on (say a GPU lease ended).
"""

from __future__ import annotations

import json
import logging
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import numpy as np
import torch

from recxplore import config as config_mod
from recxplore.adapt.item_embedder import IDEmbedder, ItemEmbedder
from recxplore.backbones import build_backbone
from recxplore.cache import Artifact, artifact_key, home_dir, write_json_atomic
from recxplore.config import Config
from recxplore.data.dataset import Dataset
from recxplore.data.prepare import prepare
from recxplore.errors import ConfigError
from recxplore.text.items import text_fields
from recxplore.train.loop import device_type, fit, resolve_device

log = logging.getLogger(__name__)

# Settings that change how fast a run goes, not what it computes. The device is the exception
# made in ``run_identity``: another device sums in another order, and early stopping turns
# those last bits into other epochs and other results.
NOT_IN_KEY = {"paths": None, "train": ("device", "threads"), "eval": ("batch_size",)}


@dataclass
class ItemInputs:
    """What a feature-based item embedder is built from, and the cache keys it came from."""

    features: Optional[np.ndarray] = None  # (n_items + 1, d) reduced LLM features
    codes: Optional[np.ndarray] = None     # (n_items + 1, M) PQ codes
    id_table: Optional[np.ndarray] = None  # (n_items + 1, hidden) pretrained, for align
    keys: tuple[str, ...] = ()


def item_inputs(cfg: Config, ds: Dataset, dataset_key: str, progress: bool) -> ItemInputs:
    """Run the upstream stages (extract, reduce, PQ codes, ID pre-training) through the cache."""
    if cfg.adapt.fusion == "id":
        return ItemInputs()
    from recxplore.adapt.pq import cached_codes
    from recxplore.adapt.reduce import reduced_features
    from recxplore.extract.stage import extract_features
    from recxplore.extract.store import open_store, read_manifest

    cache_root = home_dir(cfg.paths.home) / "cache"
    store_path, _ = extract_features(cfg, progress=progress)
    expect = {"pooling": cfg.extract.pooling}
    read_manifest(store_path, ds, expect)  # a mismatch fails here, also when PCA is cached
    features, key = reduced_features(lambda: open_store(store_path, ds, expect).embeddings,
                                     store_path.name, ds, dataset_key, cfg.adapt, cache_root)
    _warn_if_constant(features, cfg)
    out = ItemInputs(features=features, keys=(key,))
    if cfg.adapt.adapter == "pq":
        out.codes = cached_codes(features, key, cfg.adapt.pq_subvectors, cache_root)
    if cfg.adapt.fusion == "align":
        id_run = train_run(cfg.replace(**{"adapt.fusion": "id"}), progress=progress)
        state = torch.load(Path(id_run["run_dir"]) / "best.pt", map_location="cpu",
                           weights_only=True)
        out.id_table = state["items.table.weight"].numpy()
        out.keys += (Path(id_run["run_dir"]).name,)
    return out


def _warn_if_constant(features: np.ndarray, cfg: Config) -> None:
    """Features equal for every item cannot tell items apart; the run goes on (it is a valid,
    if useless, cell of a study), but says so."""
    items = features[1:]
    if len(items) > 1 and float(items.std(axis=0).max()) <= 1e-6 * max(1.0, float(
            np.abs(items).max())):
        why = (" (a decoder's first token sees nothing after itself, so every item whose text "
               "starts the same way gets the same vector; use mean, last or eol)"
               if cfg.extract.pooling == "first" else "")
        log.warning("%s features with %s pooling are the same for all %d items%s; they "
                    "cannot tell items apart", cfg.extract.model, cfg.extract.pooling,
                    len(items), why)


def build_item_embedder(cfg: Config, ds: Dataset, inputs: ItemInputs) -> ItemEmbedder:
    if cfg.adapt.fusion == "id":
        return IDEmbedder(ds.n_items, cfg.model.hidden)
    from recxplore.adapt.adapters import ADAPTERS
    from recxplore.adapt.fusion import FeatureEmbedder

    features = torch.from_numpy(inputs.features)
    codes = torch.from_numpy(inputs.codes) if inputs.codes is not None else None
    adapter = ADAPTERS[cfg.adapt.adapter](features.shape[1], cfg.model.hidden, cfg.adapt, codes)
    id_table = torch.from_numpy(inputs.id_table) if inputs.id_table is not None else None
    return FeatureEmbedder(features, adapter, cfg.model.hidden, cfg.adapt.fusion,
                           cfg.adapt.adapter_dropout, id_table, cfg.adapt.align_weight,
                           cfg.adapt.align_temperature)


def build_model(cfg: Config, ds: Dataset, inputs: Optional[ItemInputs] = None) -> torch.nn.Module:
    torch.manual_seed(cfg.train.seed)
    return build_backbone(build_item_embedder(cfg, ds, inputs or ItemInputs()), cfg.model)


def run_identity(cfg: Config) -> dict[str, Any]:
    ident = cfg.to_dict()
    for section, keys in NOT_IN_KEY.items():
        if keys is None:
            ident.pop(section)
        else:
            for key in keys:
                ident[section].pop(key)
    for section in ("tune", "generate"):  # these reach a run only through its feature key
        ident.pop(section)
    ident["text"] = text_fields(cfg.text)
    if cfg.adapt.fusion == "id":  # no text, no LLM: their settings cannot change the result
        ident.pop("text")
        ident.pop("extract")
        ident["adapt"] = {"fusion": "id"}
    device = device_type(cfg.train.device)
    if device != "cpu":  # only then, so that CPU runs keep their keys
        ident["device"] = device
    return ident


def runs_dir(cfg: Config) -> Path:
    if cfg.paths.runs_dir:
        return Path(cfg.paths.runs_dir).expanduser()
    return home_dir(cfg.paths.home) / "runs"


def run_artifact(cfg: Config, progress: bool = True
                 ) -> tuple[Artifact, Dataset, ItemInputs, str]:
    """The run's folder (as an artifact), its dataset, item inputs and dataset key; the
    upstream stages run through the cache."""
    home = home_dir(cfg.paths.home)
    ds, data_art = prepare(cfg.data, home)
    inputs = item_inputs(cfg, ds, data_art.key, progress)
    key = artifact_key("train", run_identity(cfg), (data_art.key,) + inputs.keys)
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", cfg.data.name)
    items = "id" if cfg.adapt.fusion == "id" else f"{cfg.adapt.fusion}-{cfg.adapt.adapter}"
    name = f"{slug}-{cfg.model.backbone}-{items}-{cfg.train.loss}-s{cfg.train.seed}-{key[:10]}"
    return Artifact(runs_dir(cfg), "", name), ds, inputs, data_art.key


def train_run(cfg: Config, progress: bool = True, fresh: bool = False,
              finish_on: Optional[str] = None) -> dict[str, Any]:
    """Prepare the data, train and evaluate; reuse a finished identical run unless ``fresh``.

    ``finish_on`` (a device) trains the remaining epochs of an unfinished run there rather than
    on ``train.device``; the run keeps its key and folder, and its results record the device of
    each epoch. It only finishes runs: one with no checkpoint is an error, not a fresh start
    under a key that names another device."""
    art, ds, inputs, dataset_key = run_artifact(cfg, progress)
    with art.lock():  # a parallel sweep needing the same run waits, then reuses it
        if art.done and not fresh:
            results = json.loads((art.path / "results.json").read_text(encoding="utf-8"))
            results["run_dir"] = str(art.path)  # where it is now: a home can be moved or copied
            return results
        if finish_on is not None and (fresh or not (art.partial / "checkpoint.pt").is_file()):
            raise ConfigError([f"--finish-on {finish_on}: {art.partial} has no checkpoint to "
                               f"finish; start this run on train.device={cfg.train.device} "
                               f"(without --finish-on)"])
        return _train(cfg, ds, inputs, art, dataset_key, fresh, progress, finish_on)


def _train(cfg: Config, ds: Dataset, inputs: ItemInputs, art: Artifact, dataset_key: str,
           fresh: bool, progress: bool, finish_on: Optional[str] = None) -> dict[str, Any]:
    # before a run folder is made
    device = (resolve_device(finish_on, "--finish-on") if finish_on is not None
              else resolve_device(cfg.train.device, "train.device"))
    folder = art.begin(fresh=fresh)
    (folder / "config.yaml").write_text(config_mod.dump(cfg), encoding="utf-8")
    handler = logging.FileHandler(folder / "log.txt", encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger("recxplore")
    root.addHandler(handler)
    previous_level = root.level
    root.setLevel(logging.INFO)
    try:
        model = build_model(cfg, ds, inputs)
        started = time.perf_counter()
        outcome = fit(model, ds, cfg, folder, progress=progress, device=device)
        outcome["timing"]["wall_seconds"] = round(time.perf_counter() - started, 3)
    finally:
        root.removeHandler(handler)
        root.setLevel(previous_level)
        handler.close()
    results = {"run_dir": str(art.path), "dataset": cfg.data.name, "seed": cfg.train.seed,
               "config": cfg.to_dict(), "dataset_stats": ds.stats(), **outcome}
    write_json_atomic(folder / "results.json", results)
    (folder / "checkpoint.pt").unlink(missing_ok=True)  # best.pt keeps the selected model
    art.publish({"dataset_key": dataset_key, "metrics": outcome["metrics"]})
    return results
