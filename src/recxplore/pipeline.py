"""``recxplore run``: the whole chain for one configuration, beside its ID-only baseline.

prepare -> text -> (tune) -> extract -> reduce -> train -> evaluate all go through the cache
(``train_run`` runs the upstream stages it needs), so a rerun only reads results. Without
``--config`` the main job's settings (the paper's best pipeline: flatten, CPT then SFT, mean
pooling, PCA, MoE, replace, SASRec on ML-100K with smollm2-135m) come first and the command's
overrides go on top.
"""

from __future__ import annotations

from typing import Any, Optional

from recxplore import config as config_mod
from recxplore.tables import comparison_table, results_table
from recxplore.train.run import train_run

MAIN_JOB = ["adapt.fusion=replace", "adapt.adapter=moe", "tune.stages=[cpt,sft]"]


def main_job_config(path: Optional[str], overrides: list[str]) -> config_mod.Config:
    return config_mod.load(path, overrides if path else MAIN_JOB + overrides)


def describe(cfg: config_mod.Config) -> str:
    a = cfg.adapt
    stages = "+".join(cfg.tune.stages) or "frozen"
    pca = f"PCA {a.pca:g}" if a.pca is not None else "no PCA"
    return (f"{cfg.extract.model} {stages} {cfg.extract.pooling}, {pca}, {a.adapter}, "
            f"{a.fusion}, {cfg.model.backbone}")


def run(cfg: config_mod.Config, progress: bool = True, fresh: bool = False) -> dict[str, Any]:
    """Results of ``cfg`` and, unless it is ID-only, of its ID-only baseline, with a table."""
    model = train_run(cfg, progress=progress, fresh=fresh)
    if cfg.adapt.fusion == "id":
        return {"runs": [model], "table": results_table([model])}
    baseline = train_run(cfg.replace(**{"adapt.fusion": "id"}), progress=progress, fresh=fresh)
    return {"runs": [baseline, model],
            "table": comparison_table(baseline, model, describe(cfg))}
