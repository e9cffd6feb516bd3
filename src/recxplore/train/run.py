"""One training run in its own folder, cached by its resolved config and its dataset.

The folder (``<runs_dir>/<dataset>-<backbone>-<fusion>[-<adapter>]-<loss>-s<seed>-<key>``) holds
``config.yaml``, ``log.txt``, ``metrics.csv``, ``best.pt``, ``checkpoint.pt``, ``test_ranks.csv``,
``valid_ranks.csv`` and ``results.json``. It is filled as ``<name>.partial`` and renamed when finished; an
interrupted run resumes from its checkpoint when the same command is run again, or, with
``finish_on``, on another device than the one it started on (say a run started on a GPU
machine and is finished on a CPU).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import re
import time
from pathlib import Path
from typing import Any, Optional

import torch

from recxplore import config as config_mod
from recxplore.adapt.fusions import WITHOUT_ADAPTER
from recxplore.adapt.fusions.llmesr import DualViewItems
from recxplore.adapt.gain import LearnedGain
from recxplore.adapt.inputs import ItemInputs
from recxplore.adapt.item_embedder import ItemEmbedder
from recxplore.backbones.dual_view import DualView
from recxplore.cache import Artifact, home_dir, stage_key, write_json_atomic
from recxplore.config import SECTIONS, Config, key_settings
from recxplore.data.dataset import Dataset
from recxplore.errors import ArtifactError, ConfigError
from recxplore.registry import ADAPTERS, BACKBONES, FUSIONS
from recxplore.runtime import device_type, resolve_device, resolve_precision
from recxplore.train import distributed
from recxplore.train.loop import fit
from recxplore.train.results import Results

log = logging.getLogger(__name__)

# Sections that reach a run only through the keys of its inputs (the feature store's key).
UPSTREAM_ONLY = ("tune", "generate")

# The training code's version: runs of an earlier one are never reused.
# 2: dropout masks drawn as uniform >= p (recxplore.dropout), not with bernoulli_.
TRAINER_VERSION = 2


def uses_features(cfg: Config) -> bool:
    """Whether the configured fusion reads LLM features (the ID-only fusion reads none)."""
    return "features" in FUSIONS.entry(cfg.adapt.fusion).requires


def uses_adapter(cfg: Config) -> bool:
    return uses_features(cfg) and cfg.adapt.fusion not in WITHOUT_ADAPTER


def needs(cfg: Config) -> frozenset[str]:
    """The inputs (features, codes, id_table, neighbours) the configured fusion and adapter
    read."""
    wanted = FUSIONS.entry(cfg.adapt.fusion).requires
    if cfg.adapt.fusion == "llmesr" and cfg.adapt.options("llmesr").distill_weight > 0:
        wanted = wanted | {"neighbours"}  # the self-distillation's similar users
    if uses_adapter(cfg):
        wanted = wanted | ADAPTERS.entry(cfg.adapt.adapter).requires
    return wanted


def build_item_embedder(cfg: Config, n_items: int, inputs: ItemInputs) -> ItemEmbedder:
    adapt = cfg.adapt

    def make_adapter(d_in: int) -> torch.nn.Module:
        build = ADAPTERS[adapt.adapter]
        adapter = build(d_in, cfg.model.hidden, adapt.options(adapt.adapter), inputs)
        return LearnedGain(adapter) if adapt.gain == "learned" else adapter

    return FUSIONS[adapt.fusion](
        n_items,
        cfg.model.hidden,
        inputs,
        make_adapter,
        adapt.adapter_dropout,
        adapt.options(adapt.fusion),
    )


def build_model(cfg: Config, ds: Dataset, inputs: Optional[ItemInputs] = None) -> torch.nn.Module:
    torch.manual_seed(cfg.train.seed)
    items = build_item_embedder(cfg, ds.n_items, inputs or ItemInputs())

    def backbone(embedder: ItemEmbedder) -> torch.nn.Module:
        return BACKBONES[cfg.model.backbone](embedder, cfg.model)

    if isinstance(items, DualViewItems):  # LLM-ESR: the backbone encodes each view
        return DualView(items, backbone)
    return backbone(items)


def run_identity(cfg: Config) -> dict[str, Any]:
    """What a run's key hashes besides its inputs' keys: every setting that can change it."""
    ident: dict[str, Any] = {
        name: key_settings(getattr(cfg, name)) for name in SECTIONS if name not in UPSTREAM_ONLY
    }
    ident = {name: settings for name, settings in ident.items() if settings}
    if not uses_features(cfg):  # no text, no LLM: their settings cannot change the result
        ident.pop("text")
        ident.pop("extract")
        ident["adapt"] = {"fusion": cfg.adapt.fusion}
    elif not uses_adapter(cfg):  # the adapter's settings cannot change the result
        neutral = dataclasses.replace(
            cfg.adapt, adapter="linear", adapter_dropout=0.0, gain="fixed"
        )
        ident["adapt"] = key_settings(neutral)
    version = BACKBONES.entry(cfg.model.backbone).version
    if version != 1:  # a changed backbone never reuses runs of its earlier code
        ident["backbone_version"] = version
    ident["trainer_version"] = TRAINER_VERSION
    if cfg.data.cold_share > 0:  # runs before cold items left the training loss had them in it
        ident["cold_items"] = "outside the training loss"
    device = device_type(cfg.train.device)
    if device != "cpu":  # another device sums in another order: other epochs, other results
        ident["device"] = device
    processes = distributed.world().size
    if processes > 1:  # each process draws its own dropout on its share of a batch
        ident["world_size"] = processes
    if resolve_precision(cfg.train.precision, device) != "float32":
        ident["precision"] = "bfloat16"
    return ident


def runs_dir(cfg: Config) -> Path:
    if cfg.paths.runs_dir:
        return Path(cfg.paths.runs_dir).expanduser()
    return home_dir(cfg.paths.home) / "runs"


def run_artifact(cfg: Config, dataset_key: str, inputs: ItemInputs) -> Artifact:
    """The run's folder, as an artifact keyed by its settings, its dataset and item inputs."""
    ident = run_identity(cfg)
    if inputs.seen is not None and not inputs.seen[1:].all():
        # items never in training get no trained ID row or delta (they once got one): a run on
        # such data is not one of the code before
        ident["unseen_items"] = int((~inputs.seen[1:]).sum())
    key = stage_key("train", ident, (dataset_key,) + inputs.keys)
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", cfg.data.name)
    items = f"{cfg.adapt.fusion}-{cfg.adapt.adapter}" if uses_adapter(cfg) else cfg.adapt.fusion
    name = f"{slug}-{cfg.model.backbone}-{items}-{cfg.train.loss}-s{cfg.train.seed}-{key[:10]}"
    return Artifact(runs_dir(cfg), "", name)


def train_run(
    cfg: Config,
    ds: Dataset,
    dataset_key: str,
    inputs: ItemInputs,
    progress: bool = True,
    fresh: bool = False,
    finish_on: Optional[str] = None,
) -> Results:
    """Train and evaluate on ``ds`` with the given item inputs; reuse a finished identical run
    unless ``fresh``.

    ``finish_on`` (a device) trains the remaining epochs of an unfinished run there rather than
    on ``train.device``; the run keeps its key and folder, and its results record the device of
    each epoch. It only finishes runs: one with no checkpoint is an error, not a fresh start
    under a key that names another device."""
    art = run_artifact(cfg, dataset_key, inputs)

    def build() -> Results:
        if finish_on is not None and (fresh or not (art.partial / "checkpoint.pt").is_file()):
            raise ConfigError(
                [
                    f"--finish-on {finish_on}: {art.partial} has no checkpoint to "
                    f"finish; start this run on train.device={cfg.train.device} "
                    f"(without --finish-on)"
                ]
            )
        return _train(cfg, ds, inputs, art, dataset_key, fresh, progress, finish_on)

    place = distributed.world()
    if place.distributed:  # torchrun: every process trains; rank 0 owns the folder
        distributed.start(resolve_device(finish_on or cfg.train.device, "train.device"))
        if art.done and not fresh:
            return finished_results(art)
        with art.lock() if place.main else contextlib.nullcontext():
            if place.main:
                art.begin(fresh=fresh)
            distributed.barrier()  # the folder (and any checkpoint to resume) is there
            results = build()
        distributed.barrier()  # published before any process returns
        return results
    # a parallel sweep needing the same run waits, then reuses it
    return art.reuse_or_build(lambda: finished_results(art), build, fresh)


def _train(
    cfg: Config,
    ds: Dataset,
    inputs: ItemInputs,
    art: Artifact,
    dataset_key: str,
    fresh: bool,
    progress: bool,
    finish_on: Optional[str] = None,
) -> Results:
    # before a run folder is made
    device = (
        resolve_device(finish_on, "--finish-on")
        if finish_on is not None
        else resolve_device(cfg.train.device, "train.device")
    )
    place = distributed.world()
    if place.distributed and device.type == "cuda" and device.index is None:
        device = torch.device(
            "cuda", place.local_rank
        )  # one GPU per process, as torchrun runs them
    main = place.main
    # under torchrun the folder is begun by rank 0 before the processes meet (``train_run``)
    folder = art.partial if place.distributed else art.begin(fresh=fresh)
    if main:
        (folder / "config.yaml").write_text(config_mod.dump(cfg), encoding="utf-8")
    handler: logging.Handler = (
        logging.FileHandler(folder / "log.txt", encoding="utf-8") if main else logging.NullHandler()
    )
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger("recxplore")
    root.addHandler(handler)
    previous_level = root.level
    root.setLevel(logging.INFO)
    try:
        model = build_model(cfg, ds, inputs)
        trained = sum(p.numel() for p in model.parameters() if p.requires_grad)
        started = time.perf_counter()
        outcome = fit(model, ds, cfg, folder, progress=progress, device=device)
        outcome["timing"]["wall_seconds"] = round(time.perf_counter() - started, 3)
    finally:
        root.removeHandler(handler)
        root.setLevel(previous_level)
        handler.close()
    results = Results(
        run_dir=str(art.path),
        dataset=cfg.data.name,
        seed=cfg.train.seed,
        config=cfg.to_dict(),
        dataset_stats=ds.stats(),
        metrics=outcome["metrics"],
        groups=outcome["groups"],
        timing=outcome["timing"],
        cost={"trained_parameters": trained, "upstream_seconds": dict(inputs.upstream_seconds)},
    )
    if not main:
        return results
    write_json_atomic(folder / "results.json", results)
    (folder / "checkpoint.pt").unlink(missing_ok=True)  # best.pt keeps the selected model
    art.publish(
        {
            "dataset_key": dataset_key,
            "metrics": outcome["metrics"],
            "backbone_version": BACKBONES.entry(cfg.model.backbone).version,
            "trainer_version": TRAINER_VERSION,
        },
        files=RUN_FILES,
    )
    return results


RUN_FILES = ("results.json", "test_ranks.csv", "valid_ranks.csv", "best.pt")


def finished_results(art: Artifact) -> Results:
    """The results of a finished run, verified, with ``run_dir`` where the folder is now (a home
    can be moved or copied)."""
    path = art.file("results.json")
    try:
        results: Results = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ArtifactError(
            f"{path}: unreadable ({err}); delete {art.path} and rerun to train it again"
        ) from None
    results["run_dir"] = str(art.path)
    return results
