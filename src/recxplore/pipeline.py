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
from recxplore.train.run import train_run

MAIN_JOB = ["adapt.fusion=replace", "adapt.adapter=moe", "tune.stages=[cpt,sft]"]
COLUMNS = ("HR@5", "HR@10", "NDCG@5", "NDCG@10")


def main_job_config(path: Optional[str], overrides: list[str]) -> config_mod.Config:
    return config_mod.load(path, overrides if path else MAIN_JOB + overrides)


def comparison_table(baseline: dict[str, Any], model: dict[str, Any], label: str) -> str:
    head = ["", *(f"full {m}" for m in COLUMNS), *(f"sampled {m}" for m in COLUMNS)]
    rows = [["ID-only " + baseline["config"]["model"]["backbone"]], [label], ["change"]]
    for protocol in ("full", "sampled"):
        for m in COLUMNS:
            b = baseline["metrics"]["test"][protocol][m]
            x = model["metrics"]["test"][protocol][m]
            rows[0].append(f"{b:.4f}")
            rows[1].append(f"{x:.4f}")
            rows[2].append(f"{x / b - 1:+.1%}" if b else "n/a")
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in rows])


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
        from recxplore.tables import results_table

        return {"runs": [model], "table": results_table([model])}
    baseline = train_run(cfg.replace(**{"adapt.fusion": "id"}), progress=progress, fresh=fresh)
    return {"runs": [baseline, model],
            "table": comparison_table(baseline, model, describe(cfg))}
