"""``recxplore run``: the whole chain for one configuration, beside its ID-only baseline.

prepare -> text -> (tune) -> extract -> reduce -> train -> evaluate all go through the cache
(``train_run`` runs the upstream stages it needs), so a rerun only reads results. Without
``--config`` the main job's settings (the paper's best pipeline: flatten, CPT then SFT, mean
pooling, PCA, MoE, replace, SASRec on ML-100K with smollm2-135m) come first and the command's
overrides go on top.
"""

from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from typing import Any, Optional

from recxplore import config as config_mod
from recxplore.cache import home_dir
from recxplore.data.prepare import prepare
from recxplore.tables import comparison_table, results_table
from recxplore.train.run import run_artifact, train_run

MAIN_JOB = ["adapt.fusion=replace", "adapt.adapter=moe", "tune.stages=[cpt,sft]"]


def main_job_config(path: Optional[str], overrides: list[str]) -> config_mod.Config:
    return config_mod.load(path, overrides if path else MAIN_JOB + overrides)


def describe(cfg: config_mod.Config) -> str:
    a = cfg.adapt
    stages = "+".join(cfg.tune.stages) or "frozen"
    pca = f"PCA {a.pca:g}" if a.pca is not None else "no PCA"
    return (f"{cfg.extract.model} {stages} {cfg.extract.pooling}, {pca}, {a.adapter}, "
            f"{a.fusion}, {cfg.model.backbone}")


def _train_quietly(cfg: config_mod.Config, fresh: bool) -> dict[str, Any]:
    """Module-level so that a worker process can run it."""
    return train_run(cfg, progress=False, fresh=fresh)


def run(cfg: config_mod.Config, progress: bool = True, fresh: bool = False) -> dict[str, Any]:
    """Results of ``cfg`` and, unless it is ID-only, of its ID-only baseline, with a table.

    The feature chain's upstream stages (tuning, extraction, PCA) run first; then, when both
    runs need training, the baseline trains in a worker process beside the model, each on half
    the cores (unless ``train.threads`` says otherwise): small recommenders gain little from a
    second thread, so on 2 cores the pair finishes in about 60% of the time of one after the
    other.
    """
    if cfg.adapt.fusion == "id":
        model = train_run(cfg, progress=progress, fresh=fresh)
        return {"runs": [model], "table": results_table([model])}
    base_cfg = cfg.replace(**{"adapt.fusion": "id"})
    prepare(cfg.data, home_dir(cfg.paths.home))  # once, before two processes need it
    model_done = run_artifact(cfg, progress)[0].done  # the slow upstream stages, with bars
    base_done = run_artifact(base_cfg, progress=False)[0].done
    if not fresh and (model_done or base_done):
        model = train_run(cfg, progress=progress)
        baseline = train_run(base_cfg, progress=progress)
    else:
        threads = cfg.train.threads or max(1, (os.cpu_count() or 2) // 2)
        split = {"train.threads": threads}
        with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
            pending = pool.submit(_train_quietly, base_cfg.replace(**split), fresh)
            model = train_run(cfg.replace(**split), progress=progress, fresh=fresh)
            baseline = pending.result()
    return {"runs": [baseline, model],
            "table": comparison_table(baseline, model, describe(cfg))}
