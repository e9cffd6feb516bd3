"""The chain, in one place: prepare -> text -> tune -> extract -> reduce -> codes -> train.

Every stage is a function of its config section and the inputs handed to it here; none calls
the one before it. Each goes through the content-addressed cache, so a rerun only reads what is
done, and a sweep recomputes only the stages whose settings changed.

``recxplore run`` (``run``) trains one configuration beside its ID-only baseline. Without
``--config`` the main job's settings (the paper's best pipeline: flatten, CPT then SFT, mean
pooling, PCA, MoE, replace, SASRec on ML-100K with smollm2-135m) come first and the command's
overrides go on top.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any, Optional

import numpy as np

from recxplore import config as config_mod
from recxplore.adapt.inputs import ItemInputs
from recxplore.adapt.pq import cached_codes
from recxplore.adapt.reduce import reduced_features
from recxplore.cache import Artifact, home_dir
from recxplore.config import Config
from recxplore.data.dataset import Dataset
from recxplore.data.prepare import prepare
from recxplore.data.split import seen_items
from recxplore.extract.stage import StoreSummary, extract_features
from recxplore.extract.store import open_store, read_manifest, read_shards
from recxplore.extract.users import user_neighbours
from recxplore.runtime import load_checkpoint
from recxplore.tables import comparison_table, results_table
from recxplore.train.results import Results
from recxplore.train.run import needs, run_artifact, train_run
from recxplore.tune.stage import TuneChain, tune_chain

log = logging.getLogger(__name__)

MAIN_JOB = ["adapt.fusion=replace", "adapt.adapter=moe", "tune.stages=[cpt,sft]"]


def tune(cfg: Config, progress: bool = True, fresh: bool = False) -> TuneChain:
    """prepare -> tune: the LoRA chain of ``tune.adapter`` and ``tune.stages``. ``fresh``
    retrains the stages."""
    ds, data_art = prepare(cfg.data, home_dir(cfg.paths.home))
    return tune_chain(cfg, ds, data_art.key, progress, fresh)


def features(
    cfg: Config, progress: bool = True, fresh: bool = False
) -> tuple[Dataset, str, TuneChain, StoreSummary]:
    """prepare -> text -> tune -> extract: the dataset, its key, the LoRA chain and the store.
    ``fresh`` rebuilds the store (and not the stages before it)."""
    ds, data_art = prepare(cfg.data, home_dir(cfg.paths.home))
    chain, store = _tune_and_extract(cfg, ds, data_art.key, progress, fresh)
    return ds, data_art.key, chain, store


def _tune_and_extract(
    cfg: Config, ds: Dataset, dataset_key: str, progress: bool, fresh: bool = False
) -> tuple[TuneChain, StoreSummary]:
    tuned = cfg.tune.stages or cfg.tune.adapter
    chain = tune_chain(cfg, ds, dataset_key, progress) if tuned else TuneChain()
    # the features of the items' texts: one store for every regime of a dataset
    items_key = ds.catalogue_key or dataset_key
    store = extract_features(cfg, ds, items_key, chain.folders, chain.keys, progress, fresh)
    return chain, store


def item_inputs(cfg: Config, ds: Dataset, dataset_key: str, progress: bool = True) -> ItemInputs:
    """What the configured fusion and adapter read: reduced features, their PQ codes, a
    pretrained ID table, similar users; each stage through the cache."""
    wanted = needs(cfg)
    if "features" not in wanted:
        return ItemInputs()
    chain, store = _tune_and_extract(cfg, ds, dataset_key, progress)
    expect = {"pooling": cfg.extract.pooling}
    # a mismatch or an altered shard fails here, also when the PCA features are cached
    manifest = read_manifest(store.path, ds, expect, verify="present")
    cache_root = home_dir(cfg.paths.home) / "cache"
    reduced, key = reduced_features(
        lambda: open_store(store.path, ds, expect).embeddings,
        lambda: read_shards(store.path, ds, expect),
        store.path.name,
        ds,
        dataset_key,
        cfg.adapt,
        cache_root,
    )
    _warn_if_constant(reduced, cfg)
    upstream = _stage_seconds(chain)
    if manifest.get("seconds") is not None:
        upstream["extract"] = manifest["seconds"]
    inputs = ItemInputs(
        features=reduced, keys=(key,), seen=seen_items(ds), upstream_seconds=upstream
    )
    if "codes" in wanted:
        subvectors = cfg.adapt.options(cfg.adapt.adapter).subvectors
        codes = cached_codes(reduced, key, subvectors, cache_root, seed=cfg.train.seed)
        inputs = dataclasses.replace(inputs, codes=codes)  # the run's key holds the seed already
    if "neighbours" in wanted:
        neighbours, users_key, seconds = user_neighbours(cfg, ds, dataset_key, progress)
        if seconds is not None:
            upstream["users"] = seconds
        inputs = dataclasses.replace(inputs, neighbours=neighbours, keys=inputs.keys + (users_key,))
    if "id_table" in wanted:
        id_run = train(cfg.replace(**{"adapt.fusion": "id"}), progress=progress)
        state = load_checkpoint(Path(id_run["run_dir"]) / "best.pt")
        inputs = dataclasses.replace(
            inputs,
            id_table=state["items.table.weight"].numpy(),
            keys=inputs.keys + (Path(id_run["run_dir"]).name,),
        )
    return inputs


def _stage_seconds(chain: TuneChain) -> dict[str, float]:
    """Each tuning stage's recorded seconds (a user's own adapter folder records none)."""
    out = {}
    for folder in chain.folders:
        path = Path(folder) / "manifest.json"
        if path.is_file():
            manifest = json.loads(path.read_text(encoding="utf-8"))
            if manifest.get("seconds") is not None:
                out[f"tune {manifest.get('stage', Path(folder).name)}"] = manifest["seconds"]
    return out


def _warn_if_constant(features: np.ndarray, cfg: Config) -> None:
    """Features equal for every item cannot tell items apart; the run goes on (it is a valid,
    if useless, cell of a study), but says so."""
    items = features[1:]
    if len(items) > 1 and float(items.std(axis=0).max()) <= 1e-6 * max(
        1.0, float(np.abs(items).max())
    ):
        why = (
            " (a decoder's first token sees nothing after itself, so every item whose text "
            "starts the same way gets the same vector; use mean, last or eol)"
            if cfg.extract.pooling == "first"
            else ""
        )
        log.warning(
            "%s features with %s pooling are the same for all %d items%s; they "
            "cannot tell items apart",
            cfg.extract.model,
            cfg.extract.pooling,
            len(items),
            why,
        )


def train(
    cfg: Config, progress: bool = True, fresh: bool = False, finish_on: Optional[str] = None
) -> Results:
    """The whole chain for one configuration: its results object (``recxplore train``)."""
    ds, data_art = prepare(cfg.data, home_dir(cfg.paths.home))
    inputs = item_inputs(cfg, ds, data_art.key, progress)
    return train_run(
        cfg, ds, data_art.key, inputs, progress=progress, fresh=fresh, finish_on=finish_on
    )


def run_folder(cfg: Config, progress: bool = True) -> Artifact:
    """The run folder of ``cfg``, finished or not (its upstream stages run, through the cache)."""
    ds, data_art = prepare(cfg.data, home_dir(cfg.paths.home))
    return run_artifact(cfg, data_art.key, item_inputs(cfg, ds, data_art.key, progress))


def main_job_config(path: Optional[str], overrides: list[str]) -> config_mod.Config:
    return config_mod.load(path, overrides if path else MAIN_JOB + overrides)


def describe(cfg: Config) -> str:
    a = cfg.adapt
    stages = "+".join(cfg.tune.stages) or "frozen"
    pca = f"PCA {a.pca:g}" if a.pca is not None else "no PCA"
    return (
        f"{cfg.extract.model} {stages} {cfg.extract.pooling}, {pca}, {a.adapter}, "
        f"{a.fusion}, {cfg.model.backbone}"
    )


def _train_quietly(cfg: Config, fresh: bool) -> Results:
    """Module-level so that a worker process can run it."""
    return train(cfg, progress=False, fresh=fresh)


def run(cfg: Config, progress: bool = True, fresh: bool = False) -> dict[str, Any]:
    """Results of ``cfg`` and, unless it is ID-only, of its ID-only baseline, with a table.

    The feature chain's upstream stages (tuning, extraction, PCA) run first; then, when both
    runs need training, the baseline trains in a worker process beside the model, each on half
    the cores (unless ``train.threads`` says otherwise): small recommenders gain little from a
    second thread, so on 2 cores the pair finishes in about 60% of the time of one after the
    other.
    """
    if "features" not in needs(cfg):
        model = train(cfg, progress=progress, fresh=fresh)
        return {"runs": [model], "table": results_table([model])}
    base_cfg = cfg.replace(**{"adapt.fusion": "id"})
    model_done = run_folder(cfg, progress).done  # the slow upstream stages, with bars
    base_done = run_folder(base_cfg, progress=False).done
    if not fresh and (model_done or base_done):
        model = train(cfg, progress=progress)
        baseline = train(base_cfg, progress=progress)
    else:
        threads = cfg.train.threads or max(1, (os.cpu_count() or 2) // 2)
        split = {"train.threads": threads}
        with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
            pending = pool.submit(_train_quietly, base_cfg.replace(**split), fresh)
            model = train(cfg.replace(**split), progress=progress, fresh=fresh)
            baseline = pending.result()
    return {"runs": [baseline, model], "table": comparison_table(baseline, model, describe(cfg))}
