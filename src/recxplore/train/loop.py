"""The training loop: a plain function, early stopping on validation, test evaluated once.

Resumable: after every epoch the model, optimiser and bookkeeping are saved to
``checkpoint.pt``; randomness is re-seeded from (seed, epoch) at the start of each epoch, so a
run killed and restarted ends exactly where an uninterrupted run ends (on the same device).
A run finished on another device than it started on (``train_run(finish_on=...)``) is still a
valid run, but not that one; the checkpoint and the results list the device of each epoch.
"""

from __future__ import annotations

import csv
import functools
import logging
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Optional, cast

import numpy as np
import torch
from tqdm.auto import tqdm

from recxplore.adapt.item_embedder import IDEmbedder, ItemEmbedder, ItemRows
from recxplore.cache import atomic_write
from recxplore.config import Config
from recxplore.data.dataset import Dataset
from recxplore.data.split import EvalSet, eval_set, train_sequences
from recxplore.errors import DataError, RecxploreError
from recxplore.eval.groups import GroupRules, group_metrics, instance_groups, one_group_problems
from recxplore.eval.metrics import summarise
from recxplore.eval.negatives import sample_negatives
from recxplore.eval.protocol import rank_users
from recxplore.registry import LOSSES
from recxplore.runtime import (
    autocast,
    device_type,
    load_checkpoint,
    resolve_device,
    resolve_precision,
    save_atomic,
    set_threads,
)
from recxplore.train import distributed
from recxplore.train.batches import (
    causal_batch,
    causal_windows,
    epoch_batches,
    latest_window_owners,
    masked_batch,
    masked_windows,
)
from recxplore.train.losses import DEFAULT_NEGATIVES, log_item_frequency
from recxplore.train.optimizers import Optimizers
from recxplore.train.results import Outcome, Timing
from recxplore.world import World

log = logging.getLogger(__name__)


class TrainingError(RecxploreError):
    """A run that cannot go on (a loss that is no longer a number)."""


@dataclass
class Evaluation:
    data: EvalSet
    negatives: np.ndarray  # (U, sampled_negatives)


def _epoch_seed(seed: int, epoch: int) -> int:
    return (seed * 1_000_003 + epoch) % (2**63)


def evaluate(
    model: torch.nn.Module, ev: Evaluation, cfg: Config, device: torch.device
) -> tuple[dict[str, dict[str, float]], np.ndarray, np.ndarray]:
    full, sampled = rank_users(
        model,
        ev.data,
        ev.negatives,
        max_len=cfg.model.max_len,
        batch_size=cfg.eval.batch_size,
        mask_history=cfg.eval.mask_history,
        device=device,
        precision=resolve_precision(cfg.train.precision, device.type),
        item_chunk=cfg.eval.item_chunk,
    )
    return (
        {"full": summarise(full, cfg.eval.ks), "sampled": summarise(sampled, cfg.eval.ks)},
        full,
        sampled,
    )


def build_evaluations(ds: Dataset, cfg: Config) -> tuple[Evaluation, Evaluation]:
    out = []
    for part in ("valid", "test"):
        data = eval_set(ds, part)
        negs = sample_negatives(ds, data.users, cfg.eval.sampled_negatives, cfg.train.seed, part)
        out.append(Evaluation(data, negs))
    return out[0], out[1]


@dataclass
class TrainState:
    """Where a run stands after its last finished epoch; saved in every checkpoint."""

    epoch: int = 0
    best: float = -1.0
    best_epoch: int = 0
    bad: int = 0  # epochs since the best one
    steps: int = 0  # optimiser steps taken
    history: list[dict[str, Any]] = field(default_factory=list)  # one metrics.csv row an epoch
    seconds: float = 0.0
    seconds_to_best: float = 0.0
    devices: list[dict[str, Any]] = field(default_factory=list)  # [{from_epoch, device}]

    @classmethod
    def from_checkpoint(cls, saved: dict[str, Any], configured_device: str) -> TrainState:
        # Checkpoints written before devices were recorded ran on the configured device.
        saved.setdefault("devices", [{"from_epoch": 1, "device": configured_device}])
        return cls(**saved)


@dataclass
class TrainingCatalogue:
    """The items the training loss sees when a cold-start split holds some back: cold items
    stand for items that arrive after training, so they are neither targets nor negatives (a
    full softmax would otherwise push them down, and a model would learn to never recommend
    what looks new). Items that merely have no training interactions stay in: they are in the
    catalogue at training time. Evaluation ranks every item."""

    rows: torch.Tensor  # (1 + n_kept,) row 0 (padding), then the kept items' indices
    position: torch.Tensor  # (n_items + 1,) an item's row in ``rows`` (0 for cold ones)

    @classmethod
    def of(cls, ds: Dataset, device: torch.device) -> Optional[TrainingCatalogue]:
        if ds.cold is None:
            return None
        rows = np.concatenate([[0], np.flatnonzero(~ds.cold[1:]) + 1])
        position = np.zeros(ds.n_items + 1, dtype=np.int64)
        position[rows] = np.arange(len(rows))
        return cls(torch.from_numpy(rows).to(device), torch.from_numpy(position).to(device))


@dataclass
class _Run:
    """A run set up for training: the model, its data and the loss."""

    model: torch.nn.Module
    opt: torch.optim.Optimizer | Optimizers
    valid: Evaluation
    test: Evaluation
    windows: list[Any]
    lengths: np.ndarray  # targets per window
    causal: bool
    loss_fn: Any
    negatives: int
    device: torch.device
    precision: str  # resolved: float32 or bfloat16
    catalogue: Optional[TrainingCatalogue] = None
    # for a model with an auxiliary loss on users (LLM-ESR): each window's user, -1 for a
    # user's older windows
    owners: Optional[np.ndarray] = None
    world: World = field(default_factory=World)
    ddp: Optional[torch.nn.Module] = None  # the model in DistributedDataParallel, under torchrun

    def training_loss(
        self,
        h: torch.Tensor,
        targets: torch.Tensor,
        table: torch.Tensor | ItemRows,
        gen: torch.Generator,
    ) -> torch.Tensor:
        if self.catalogue is not None:
            rows = self.catalogue.rows
            table = table.take(rows) if isinstance(table, ItemRows) else table[rows]
            targets = self.catalogue.position[targets]
        return self.loss_fn(h, targets, table, gen, self.negatives)


def _setup(model: torch.nn.Module, ds: Dataset, cfg: Config, device: torch.device) -> _Run:
    tc, mc = cfg.train, cfg.model
    set_threads(tc.threads)
    torch.manual_seed(tc.seed)
    model.to(device)
    valid, test = build_evaluations(ds, cfg)
    if len(valid.data) == 0:
        raise DataError(
            f"{ds.name}: no user has the 3 interactions leave-one-out needs; lower "
            f"the data.* filters or use a dataset with longer histories"
        )
    rules = GroupRules.of(cfg.eval)  # a threshold that leaves a group empty, said up front
    for problem in one_group_problems(instance_groups(ds, valid.data, rules), rules):
        log.warning("%s: %s", ds.name, problem)
    seqs = train_sequences(ds)
    causal = model.objective == "causal"
    make = causal_windows if causal else masked_windows
    windows = make(seqs, mc.max_len)
    owners = (
        latest_window_owners(seqs, make, mc.max_len) if hasattr(model, "auxiliary_loss") else None
    )
    catalogue = TrainingCatalogue.of(ds, device)
    items = cast(ItemEmbedder, model.items)
    items.by_rows = "whole_table" not in LOSSES.entry(tc.loss).requires and items.computes_rows
    place = distributed.world()
    opt: torch.optim.Optimizer | Optimizers
    if tc.sparse_items:  # the config allows it with the ID table and a loss reading rows only
        if place.distributed:
            raise TrainingError(
                "train.sparse_items: not under torchrun (DistributedDataParallel averages dense "
                "gradients); train in one process or remove the setting"
            )
        table = cast(IDEmbedder, items).table
        table.sparse = True
        others = [p for p in model.parameters() if p is not table.weight]
        opt = Optimizers(
            torch.optim.AdamW(others, lr=tc.lr, weight_decay=tc.weight_decay),
            torch.optim.SparseAdam([table.weight], lr=tc.lr),
        )
    else:
        opt = torch.optim.AdamW(model.parameters(), lr=tc.lr, weight_decay=tc.weight_decay)
    ddp = None
    if place.distributed:
        from torch.nn.parallel import DistributedDataParallel

        distributed.start(device)
        # some parts (an MoE's noise gate, an alignment's IDs) miss steps: DDP must not wait
        ids = [device.index] if device.type == "cuda" else None
        ddp = DistributedDataParallel(model, device_ids=ids, find_unused_parameters=True)
    return _Run(
        model,
        opt,
        valid,
        test,
        windows,
        np.array([len(w) for w in windows]),
        causal,
        _loss(tc.loss, seqs, ds, device, catalogue),
        tc.num_negatives or DEFAULT_NEGATIVES[tc.loss],
        device,
        resolve_precision(tc.precision, device.type),
        catalogue,
        owners,
        place,
        ddp,
    )


def _loss(
    name: str,
    seqs: list[np.ndarray],
    ds: Dataset,
    device: torch.device,
    catalogue: Optional[TrainingCatalogue],
) -> Any:
    """The configured loss, given the item popularity it corrects for if it needs it, as rows
    of the table it will see (without cold items when the split holds some back)."""
    loss = LOSSES[name]
    if "log_q" not in LOSSES.entry(name).requires:
        return loss
    log_q = log_item_frequency(seqs, ds.n_items).to(device)
    return functools.partial(loss, log_q=log_q if catalogue is None else log_q[catalogue.rows])


def _resume(run: _Run, ckpt_path: Path, cfg: Config) -> TrainState:
    state = TrainState(devices=[{"from_epoch": 1, "device": run.device.type}])
    if not ckpt_path.is_file():
        return state
    ckpt = load_checkpoint(ckpt_path, run.device)
    run.model.load_state_dict(ckpt["model"])
    run.opt.load_state_dict(ckpt["optimizer"])
    state = TrainState.from_checkpoint(ckpt["state"], device_type(cfg.train.device))
    log.info("resuming %s after epoch %d", ckpt_path.parent, state.epoch)
    if state.devices[-1]["device"] != run.device.type:
        log.warning(
            "%s: epochs from %d on run on %s; the earlier ones ran on %s",
            ckpt_path.parent,
            state.epoch + 1,
            run.device.type,
            state.devices[-1]["device"],
        )
        state.devices.append({"from_epoch": state.epoch + 1, "device": run.device.type})
    return state


def _train_epoch(
    run: _Run, cfg: Config, epoch: int, state: TrainState, progress: bool
) -> tuple[float, dict[str, float]]:
    """One pass over the training windows: the mean loss, and for an item embedder with its
    own loss term that term's mean and gradient ratio."""
    tc, mc, model = cfg.train, cfg.model, run.model
    seed = _epoch_seed(tc.seed, epoch)
    torch.manual_seed(seed)
    gen = torch.Generator(device=run.device).manual_seed(seed)
    rng = np.random.default_rng(seed)
    batches = epoch_batches(run.lengths, tc.batch_size, rng, tc.batching == "bucketed")
    model.train()
    total, steps, extra_total = 0.0, 0, 0.0
    extra_stats: dict[str, float] = {}
    bar = tqdm(batches, desc=f"epoch {epoch}", leave=False, disable=not progress, unit="batch")
    place = run.world
    for batch in bar:
        shard = batch[place.rank :: place.size] if place.distributed else batch
        idle = len(shard) == 0  # a batch smaller than the world: this process only keeps step
        chunk = [run.windows[i] for i in (batch[:1] if idle else shard)]
        if run.causal:
            arrays = causal_batch(chunk)
        else:
            arrays = masked_batch(chunk, model.mask_id, mc.mask_prob, rng)  # type: ignore[arg-type]
        inputs = torch.from_numpy(arrays[0]).to(run.device)
        targets = torch.from_numpy(arrays[1]).to(run.device)
        with autocast(run.device, run.precision):
            hidden = (run.ddp or model)(inputs)  # (B, L, D)
            where = targets > 0
            h, t = hidden[where], targets[where]  # (N, D), (N,)
            embedder = cast(ItemEmbedder, model.items)
            # (n_items + 1, D), or computed where the loss indexes it
            table = ItemRows(embedder) if embedder.by_rows else embedder.all_items()
            loss = run.training_loss(h, t, table, gen)
            extra = model.items.extra_loss(t, table)
            if run.owners is not None:
                users = torch.from_numpy(run.owners[batch[:1] if idle else shard]).to(run.device)
                extra = _plus(extra, model.auxiliary_loss(hidden, users))
        if extra is not None:
            if steps == 0 and not place.distributed:  # once an epoch: how much it moves
                items = cast(torch.nn.Module, model.items)
                extra_stats["grad_ratio"] = _gradient_ratio(items, extra, loss)
            extra_total += extra.item()
            loss = loss + extra
        value = loss.item()  # the host sync a step (one more with an extra loss term)
        if place.distributed:  # weighted by this process's share of the batch's targets
            mine = 0 if idle else int(t.numel())
            targets_in_batch = distributed.total(mine, run.device)
            value = distributed.total(value * mine, run.device) / targets_in_batch
            loss = loss * (place.size * mine / targets_in_batch)
        if not math.isfinite(value):
            raise TrainingError(
                f"the training loss became {value} at epoch {epoch}, batch {steps + 1}; "
                f"lower train.lr or set train.grad_clip (the checkpoint of the last finished "
                f"epoch is kept, so the same command with new settings starts again)"
            )
        run.opt.zero_grad(set_to_none=True)
        loss.backward()
        if tc.grad_clip:
            torch.nn.utils.clip_grad_norm_(model.parameters(), tc.grad_clip)
        state.steps += 1
        if tc.warmup_steps:
            for group in run.opt.param_groups:
                group["lr"] = tc.lr * min(1.0, state.steps / tc.warmup_steps)
        run.opt.step()
        total += value
        steps += 1
        bar.set_postfix(loss=f"{total / steps:.4f}")
    if "grad_ratio" in extra_stats:
        extra_stats["loss"] = extra_total / max(steps, 1)
    return total / max(steps, 1), extra_stats


def _plus(a: Optional[torch.Tensor], b: Optional[torch.Tensor]) -> Optional[torch.Tensor]:
    return b if a is None else a if b is None else a + b


def _gradient_ratio(items: torch.nn.Module, extra: torch.Tensor, loss: torch.Tensor) -> float:
    """||gradient of the item embedder's extra loss|| / ||gradient of the training loss||, over
    the item embedder's trained parameters (for ``align``: the adapter)."""
    params = [p for p in items.parameters() if p.requires_grad]
    norms = []
    for term in (extra, loss):
        grads = torch.autograd.grad(term, params, retain_graph=True, allow_unused=True)
        norms.append(sum(float(g.pow(2).sum()) for g in grads if g is not None) ** 0.5)
    return norms[0] / norms[1] if norms[1] else float("inf")


def patience_epochs(model: torch.nn.Module, cfg: Config) -> int:
    """Epochs without progress before stopping: ``train.patience``, or for a masked objective
    counted in training targets, that many epochs' worth of a next-item model's targets."""
    tc = cfg.train
    if tc.patience_unit == "targets" and getattr(model, "objective", None) == "masked":
        return math.ceil(tc.patience / cfg.model.mask_prob)
    return tc.patience


def fit(
    model: torch.nn.Module,
    ds: Dataset,
    cfg: Config,
    run_dir: Path,
    progress: bool = True,
    device: Optional[torch.device] = None,
) -> Outcome:
    """Train ``model`` on ``ds`` in ``run_dir`` (on ``device``, default ``train.device``);
    return metrics and timing (results object)."""
    tc = cfg.train
    run = _setup(model, ds, cfg, device or resolve_device(tc.device, "train.device"))
    ckpt_path, best_path = run_dir / "checkpoint.pt", run_dir / "best.pt"
    state = _resume(run, ckpt_path, cfg)
    from torch.utils.tensorboard import SummaryWriter

    main = run.world.main  # under torchrun, rank 0 alone writes the run folder
    board = SummaryWriter(log_dir=str(run_dir / "tensorboard")) if main else None
    patience = patience_epochs(model, cfg)
    while state.epoch < tc.epochs and state.bad < patience:
        epoch = state.epoch + 1
        started = time.perf_counter()
        loss, extra = _train_epoch(run, cfg, epoch, state, progress)
        metrics, _, _ = evaluate(model, run.valid, cfg, run.device)
        score = metrics["full"][tc.select_metric]
        state.seconds += time.perf_counter() - started
        state.epoch = epoch
        row = {
            "epoch": epoch,
            "loss": round(loss, 6),
            # the item embedder's own loss term (align), inside loss, and its gradient's size
            # against the training loss's on the item embedder (first batch of the epoch)
            **({"extra_loss": round(extra["loss"], 6)} if extra else {}),
            **({"extra_grad_ratio": round(extra["grad_ratio"], 6)} if extra else {}),
            "seconds": round(state.seconds, 3),
            **{f"valid_full_{m}": v for m, v in metrics["full"].items()},
            **{f"valid_sampled_{m}": v for m, v in metrics["sampled"].items()},
        }
        state.history.append(row)
        if score > state.best + tc.min_delta:
            state.best, state.best_epoch, state.bad = score, epoch, 0
            state.seconds_to_best = state.seconds
            if main:
                save_atomic(model.state_dict(), best_path)
        else:
            state.bad += 1
        log.info(
            "epoch %d loss %.4f valid %s %.4f (best %.4f at %d) %.1fs",
            epoch,
            row["loss"],
            tc.select_metric,
            score,
            state.best,
            state.best_epoch,
            state.seconds,
        )
        if board is None:
            continue
        _write_history(run_dir / "metrics.csv", state.history)
        board.add_scalar("train/loss", row["loss"], epoch)
        for protocol in ("full", "sampled"):
            for name, value in metrics[protocol].items():
                board.add_scalar(f"valid_{protocol}/{name}", value, epoch)
        board.flush()
        save_atomic(
            {
                "model": model.state_dict(),
                "optimizer": run.opt.state_dict(),
                "state": asdict(state),
            },
            ckpt_path,
        )
    if board is not None:
        board.close()
    distributed.barrier()  # the best checkpoint is written before any process reads it
    return _finish(run, ds, cfg, state, best_path, run_dir)


def _finish(
    run: _Run, ds: Dataset, cfg: Config, state: TrainState, best_path: Path, run_dir: Path
) -> Outcome:
    """Evaluate the best-validation checkpoint: validation again, then test, once."""
    model = run.model
    model.load_state_dict(load_checkpoint(best_path, run.device))
    metrics, groups = {}, {}
    rules = GroupRules.of(cfg.eval)
    for part, ev in (("valid", run.valid), ("test", run.test)):
        metrics[part], full, sampled = evaluate(model, ev, cfg, run.device)
        if run.world.main:
            write_ranks(run_dir / f"{part}_ranks.csv", ds, ev.data, full, sampled)
        found = instance_groups(ds, ev.data, rules)
        groups[part] = group_metrics(found, full, sampled, cfg.eval.ks)
    epochs = state.epoch
    timing: Timing = {
        "train_seconds": round(state.seconds, 3),
        "epochs": epochs,
        "best_epoch": state.best_epoch,
        "patience_epochs": patience_epochs(model, cfg),
        "seconds_to_best": round(state.seconds_to_best, 3),
        "seconds_per_epoch": round(state.seconds / max(epochs, 1), 3),
        "devices": state.devices,
        "precision": run.precision,
    }
    if run.world.distributed:
        timing["world_size"] = run.world.size
        timing["batch_per_process"] = math.ceil(cfg.train.batch_size / run.world.size)
    return {"metrics": metrics, "groups": groups, "timing": timing}


def write_ranks(
    path: Path, ds: Dataset, data: EvalSet, full: np.ndarray, sampled: np.ndarray
) -> None:
    """Each user's target and its full and sampled rank (``<part>_ranks.csv``)."""
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["user", "target", "rank_full", "rank_sampled"])
        for user, target, rf, rs in zip(data.users, data.targets, full, sampled):
            writer.writerow([ds.user_ids[user], int(target), int(rf), int(rs)])


def _write_history(path: Path, history: list[dict[str, Any]]) -> None:
    with atomic_write(path, newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(history[0]))
        writer.writeheader()
        writer.writerows(history)
