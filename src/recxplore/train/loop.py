"""The training loop: a plain function, early stopping on validation, test evaluated once.

Resumable: after every epoch the model, optimiser and bookkeeping are saved to
``checkpoint.pt``; randomness is re-seeded from (seed, epoch) at the start of each epoch, so a
run killed and restarted ends exactly where an uninterrupted run ends (on the same device).
A run finished on another device than it started on (``train_run(finish_on=...)``) is still a
valid run, but not that one; the checkpoint and the results list the device of each epoch.
"""

from __future__ import annotations

import csv
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import numpy as np
import torch
from tqdm.auto import tqdm

from recxplore.config import Config
from recxplore.data.dataset import Dataset
from recxplore.data.split import EvalSet, eval_set, train_sequences
from recxplore.errors import ConfigError, DataError
from recxplore.eval.metrics import summarise
from recxplore.eval.negatives import sample_negatives
from recxplore.eval.protocol import rank_users
from recxplore.train.batches import causal_batch, causal_windows, masked_batch, masked_windows
from recxplore.train.losses import DEFAULT_NEGATIVES, LOSSES

log = logging.getLogger(__name__)


@dataclass
class Evaluation:
    data: EvalSet
    negatives: np.ndarray  # (U, sampled_negatives)


def device_type(name: str) -> str:
    """The device type a ``*.device`` setting names, without checking that this machine has it:
    the run keys of CUDA runs are computed on a CPU too, when their results are read there."""
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(name).type


def resolve_device(name: str, key: str) -> torch.device:
    """The torch device of the setting ``key`` (say ``train.device``); a clear error, rather than
    torch's assertion deep in a run, when it names CUDA on a machine without it."""
    device = torch.device(device_type(name) if name == "auto" else name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError([f"{key}={name}: torch {torch.__version__} sees no CUDA device on this "
                           f"machine; set {key}=cpu or {key}=auto"])
    return device


def save_atomic(obj: Any, path: Path) -> None:
    """torch.save to a temporary name, then rename: a crash never leaves half a checkpoint."""
    tmp = path.with_name(path.name + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def _epoch_seed(seed: int, epoch: int) -> int:
    return (seed * 1_000_003 + epoch) % (2**63)


def evaluate(model: torch.nn.Module, ev: Evaluation, cfg: Config, device: torch.device
             ) -> tuple[dict[str, dict[str, float]], np.ndarray, np.ndarray]:
    full, sampled = rank_users(model, ev.data, ev.negatives, max_len=cfg.model.max_len,
                               batch_size=cfg.eval.batch_size,
                               mask_history=cfg.eval.mask_history, device=device)
    return {"full": summarise(full, cfg.eval.ks), "sampled": summarise(sampled, cfg.eval.ks)}, \
        full, sampled


def build_evaluations(ds: Dataset, cfg: Config) -> tuple[Evaluation, Evaluation]:
    out = []
    for part in ("valid", "test"):
        data = eval_set(ds, part)
        negs = sample_negatives(ds, data.users, cfg.eval.sampled_negatives, cfg.train.seed, part)
        out.append(Evaluation(data, negs))
    return out[0], out[1]


def fit(model: torch.nn.Module, ds: Dataset, cfg: Config, run_dir: Path,
        progress: bool = True, device: Optional[torch.device] = None) -> dict[str, Any]:
    """Train ``model`` on ``ds`` in ``run_dir`` (on ``device``, default ``train.device``);
    return metrics and timing (results object)."""
    tc, mc = cfg.train, cfg.model
    device = device or resolve_device(tc.device, "train.device")
    if tc.threads:
        torch.set_num_threads(tc.threads)
    torch.manual_seed(tc.seed)
    model.to(device)
    valid, test = build_evaluations(ds, cfg)
    if len(valid.data) == 0:
        raise DataError(f"{ds.name}: no user has the 3 interactions leave-one-out needs; lower "
                        f"the data.* filters or use a dataset with longer histories")
    seqs = train_sequences(ds)
    causal = model.objective == "causal"
    windows = causal_windows(seqs, mc.max_len) if causal else masked_windows(seqs, mc.max_len)
    loss_fn = LOSSES[tc.loss]
    k = tc.num_negatives or DEFAULT_NEGATIVES[tc.loss]
    opt = torch.optim.AdamW(model.parameters(), lr=tc.lr, weight_decay=tc.weight_decay)

    state = {"epoch": 0, "best": -1.0, "best_epoch": 0, "bad": 0, "history": [], "seconds": 0.0,
             "seconds_to_best": 0.0, "devices": [{"from_epoch": 1, "device": device.type}]}
    ckpt_path, best_path = run_dir / "checkpoint.pt", run_dir / "best.pt"
    if ckpt_path.is_file():
        ckpt = torch.load(ckpt_path, map_location=device, weights_only=False)
        model.load_state_dict(ckpt["model"])
        opt.load_state_dict(ckpt["optimizer"])
        state = ckpt["state"]
        log.info("resuming %s after epoch %d", run_dir, state["epoch"])
        # Checkpoints written before devices were recorded ran on the configured device.
        devices = state.setdefault("devices", [{"from_epoch": 1, "device": device_type(tc.device)}])
        if devices[-1]["device"] != device.type:
            log.warning("%s: epochs from %d on run on %s; the earlier ones ran on %s", run_dir,
                        state["epoch"] + 1, device.type, devices[-1]["device"])
            devices.append({"from_epoch": state["epoch"] + 1, "device": device.type})

    metrics_csv = run_dir / "metrics.csv"
    from torch.utils.tensorboard import SummaryWriter

    board = SummaryWriter(log_dir=str(run_dir / "tensorboard"))
    while state["epoch"] < tc.epochs and state["bad"] < tc.patience:
        epoch = state["epoch"] + 1
        started = time.perf_counter()
        seed = _epoch_seed(tc.seed, epoch)
        torch.manual_seed(seed)
        gen = torch.Generator(device=device).manual_seed(seed)
        rng = np.random.default_rng(seed)
        order = rng.permutation(len(windows))
        model.train()
        total, steps = 0.0, 0
        bar = tqdm(range(0, len(order), tc.batch_size), desc=f"epoch {epoch}", leave=False,
                   disable=not progress, unit="batch")
        for start in bar:
            chunk = [windows[i] for i in order[start:start + tc.batch_size]]
            if causal:
                inputs, targets = causal_batch(chunk)
            else:
                inputs, targets = masked_batch(chunk, model.mask_id, mc.mask_prob, rng)
            inputs = torch.from_numpy(inputs).to(device)
            targets = torch.from_numpy(targets).to(device)
            hidden = model(inputs)  # (B, L, D)
            where = targets > 0
            h, t = hidden[where], targets[where]  # (N, D), (N,)
            table = model.items.all_items()  # (n_items + 1, D)
            loss = loss_fn(h, t, table, gen, k)
            extra = model.items.extra_loss(t, table)
            if extra is not None:
                loss = loss + extra
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if tc.grad_clip:
                torch.nn.utils.clip_grad_norm_(model.parameters(), tc.grad_clip)
            opt.step()
            total += loss.item()
            steps += 1
            bar.set_postfix(loss=f"{total / steps:.4f}")
        metrics, _, _ = evaluate(model, valid, cfg, device)
        score = metrics["full"][tc.select_metric]
        state["seconds"] += time.perf_counter() - started
        state["epoch"] = epoch
        row = {"epoch": epoch, "loss": round(total / max(steps, 1), 6),
               "seconds": round(state["seconds"], 3),
               **{f"valid_full_{m}": v for m, v in metrics["full"].items()},
               **{f"valid_sampled_{m}": v for m, v in metrics["sampled"].items()}}
        state["history"].append(row)
        if score > state["best"]:
            state.update(best=score, best_epoch=epoch, bad=0, seconds_to_best=state["seconds"])
            save_atomic(model.state_dict(), best_path)
        else:
            state["bad"] += 1
        log.info("epoch %d loss %.4f valid %s %.4f (best %.4f at %d) %.1fs", epoch, row["loss"],
                 tc.select_metric, score, state["best"], state["best_epoch"], state["seconds"])
        _write_history(metrics_csv, state["history"])
        board.add_scalar("train/loss", row["loss"], epoch)
        for protocol in ("full", "sampled"):
            for name, value in metrics[protocol].items():
                board.add_scalar(f"valid_{protocol}/{name}", value, epoch)
        board.flush()
        save_atomic({"model": model.state_dict(), "optimizer": opt.state_dict(), "state": state},
                     ckpt_path)

    board.close()
    model.load_state_dict(torch.load(best_path, map_location=device, weights_only=True))
    valid_metrics, _, _ = evaluate(model, valid, cfg, device)
    test_metrics, full, sampled = evaluate(model, test, cfg, device)  # the only test evaluation
    with open(run_dir / "test_ranks.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["user", "target", "rank_full", "rank_sampled"])
        for user, target, rf, rs in zip(test.data.users, test.data.targets, full, sampled):
            writer.writerow([ds.user_ids[user], int(target), int(rf), int(rs)])
    epochs = state["epoch"]
    return {
        "metrics": {"valid": valid_metrics, "test": test_metrics},
        "timing": {"train_seconds": round(state["seconds"], 3), "epochs": epochs,
                   "best_epoch": state["best_epoch"],
                   "seconds_to_best": round(state["seconds_to_best"], 3),
                   "seconds_per_epoch": round(state["seconds"] / max(epochs, 1), 3),
                   "devices": state["devices"]},
    }


def _write_history(path: Path, history: list[dict[str, Any]]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(history[0]))
        writer.writeheader()
        writer.writerows(history)
    os.replace(tmp, path)
