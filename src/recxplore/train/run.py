"""One training run in its own folder, cached by its resolved config and its dataset.

The folder (``<runs_dir>/<dataset>-<backbone>-<fusion>-<loss>-s<seed>-<key>``) holds
``config.yaml``, ``log.txt``, ``metrics.csv``, ``best.pt``, ``checkpoint.pt``, ``test_ranks.csv``
and ``results.json``. It is filled as ``<name>.partial`` and renamed when finished; an
interrupted run resumes from its checkpoint when the same command is run again.
"""

from __future__ import annotations

import json
import logging
import re
import time
from pathlib import Path
from typing import Any

import torch

from recxplore import config as config_mod
from recxplore.adapt.item_embedder import IDEmbedder, ItemEmbedder
from recxplore.backbones import build_backbone
from recxplore.cache import Artifact, artifact_key, home_dir, write_json_atomic
from recxplore.config import Config
from recxplore.data.dataset import Dataset
from recxplore.data.prepare import prepare
from recxplore.train.loop import fit

# Settings that change how fast a run goes, not what it computes.
NOT_IN_KEY = {"paths": None, "train": ("device", "threads"), "eval": ("batch_size",)}


def build_item_embedder(cfg: Config, ds: Dataset) -> ItemEmbedder:
    if cfg.adapt.fusion == "id":
        return IDEmbedder(ds.n_items, cfg.model.hidden)
    raise AssertionError(f"unhandled fusion {cfg.adapt.fusion}")  # config validation prevents it


def build_model(cfg: Config, ds: Dataset) -> torch.nn.Module:
    torch.manual_seed(cfg.train.seed)
    return build_backbone(build_item_embedder(cfg, ds), cfg.model)


def run_identity(cfg: Config) -> dict[str, Any]:
    ident = cfg.to_dict()
    for section, keys in NOT_IN_KEY.items():
        if keys is None:
            ident.pop(section)
        else:
            for key in keys:
                ident[section].pop(key)
    return ident


def runs_dir(cfg: Config) -> Path:
    if cfg.paths.runs_dir:
        return Path(cfg.paths.runs_dir).expanduser()
    return home_dir(cfg.paths.home) / "runs"


def train_run(cfg: Config, progress: bool = True, fresh: bool = False) -> dict[str, Any]:
    """Prepare the data, train and evaluate; reuse a finished identical run unless ``fresh``."""
    home = home_dir(cfg.paths.home)
    ds, data_art = prepare(cfg.data, home)
    key = artifact_key("train", run_identity(cfg), (data_art.key,))
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", cfg.data.name)
    name = (f"{slug}-{cfg.model.backbone}-{cfg.adapt.fusion}-{cfg.train.loss}-"
            f"s{cfg.train.seed}-{key[:10]}")
    art = Artifact(runs_dir(cfg), "", name)
    if art.done and not fresh:
        return json.loads((art.path / "results.json").read_text(encoding="utf-8"))
    folder = art.begin(fresh=fresh)
    (folder / "config.yaml").write_text(config_mod.dump(cfg), encoding="utf-8")
    handler = logging.FileHandler(folder / "log.txt", encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger("recxplore")
    root.addHandler(handler)
    previous_level = root.level
    root.setLevel(logging.INFO)
    try:
        model = build_model(cfg, ds)
        started = time.perf_counter()
        outcome = fit(model, ds, cfg, folder, progress=progress)
        outcome["timing"]["wall_seconds"] = round(time.perf_counter() - started, 3)
    finally:
        root.removeHandler(handler)
        root.setLevel(previous_level)
        handler.close()
    results = {"run_dir": str(art.path), "dataset": cfg.data.name, "seed": cfg.train.seed,
               "config": cfg.to_dict(), "dataset_stats": ds.stats(), **outcome}
    write_json_atomic(folder / "results.json", results)
    (folder / "checkpoint.pt").unlink(missing_ok=True)  # best.pt keeps the selected model
    art.publish({"dataset_key": data_art.key, "metrics": outcome["metrics"]})
    return results
