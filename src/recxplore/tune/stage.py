"""``tune``: LoRA stages (cpt, sft, scft) on the extractor, each cached as an adapter artifact.

A stage's artifact (``<home>/cache/tune/<key>``) holds the PEFT adapter
(``adapter_model.safetensors`` + ``adapter_config.json``), ``manifest.json`` (stage, base model,
settings, steps, wall time), ``loss.csv`` and ``loss.png``. Its key hashes the stage's settings,
the item-text settings, the base model and the key of the stage before it, so ``[cpt, sft]``
reuses a finished ``[cpt]``. Stage k trains a fresh LoRA on the base model with stages 1..k-1
merged in. A stage checkpoints every ``tune.save_every`` steps inside its partial folder; the
example order, masks and dropout of step s depend only on (seed, s), so a resumed stage ends
where an uninterrupted one does.
"""

from __future__ import annotations

import csv
import dataclasses
import logging
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import numpy as np
import torch
from tqdm.auto import tqdm

from recxplore.cache import Artifact, home_dir, sha256_file, stage_key
from recxplore.config import Config, key_settings
from recxplore.data.dataset import Dataset
from recxplore.llm import models
from recxplore.llm.lora import (
    ADAPTER_FILE,
    TuneError,
    apply_adapters,
    check_base,
    lora_config,
    target_modules,
)
from recxplore.registry import OBJECTIVES
from recxplore.runtime import (
    autocast,
    device_type,
    ensure_pad_token,
    load_checkpoint,
    resolve_device,
    resolve_precision,
    save_atomic,
    set_threads,
)
from recxplore.text.items import text_settings
from recxplore.text.rewrite import text_identity
from recxplore.tune.objectives.common import TuneModel

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TuneChain:
    """The LoRA adapters to apply before extraction, in order, and their cache keys."""

    folders: list[Path] = field(default_factory=list)
    keys: list[str] = field(default_factory=list)
    trained: list[dict[str, Any]] = field(default_factory=list)  # a summary per stage trained now


def tune_seed(cfg: Config) -> int:
    """The seed of the LoRA stages: ``tune.seed``, else the run's ``train.seed``."""
    return cfg.tune.seed if cfg.tune.seed is not None else cfg.train.seed


def stage_settings(cfg: Config, stage: str) -> dict[str, Any]:
    """The tune settings that stage ``stage`` depends on (other stages' settings left out),
    with the seed it trains with."""
    alone = dataclasses.replace(cfg.tune, stages=[stage])  # its own objective's settings only
    settings = {**key_settings(alone), "dtype": tune_dtype(cfg), "seed": tune_seed(cfg)}
    version = OBJECTIVES.entry(stage).version
    if version != 1:  # a changed objective never reuses stages of its earlier code
        settings["objective_version"] = version
    return settings


def tune_dtype(cfg: Config) -> str:
    """``tune.dtype`` as the stages run it (``auto`` resolved for their device)."""
    return resolve_precision(cfg.tune.dtype, device_type(cfg.tune.device))


def is_encoder(config: Any) -> bool:
    """A masked-LM architecture (BERT-like): CPT is masked LM and SFT is not possible."""
    from transformers.models.auto.modeling_auto import MODEL_FOR_MASKED_LM_MAPPING_NAMES

    return config.model_type in MODEL_FOR_MASKED_LM_MAPPING_NAMES


def _load_lm(source: str, encoder: bool, offline: bool, trust_remote_code: bool) -> Any:
    from transformers import AutoModelForCausalLM, AutoModelForMaskedLM

    cls = AutoModelForMaskedLM if encoder else AutoModelForCausalLM
    lm, info = cls.from_pretrained(  # type: ignore[misc]  # a pair with output_loading_info
        source,
        local_files_only=offline,
        trust_remote_code=trust_remote_code,
        output_loading_info=True,
    )
    lm.requires_grad_(False)
    prefix = lm.base_model_prefix + "."
    missing = set(info.get("missing_keys", []))
    for name, param in lm.named_parameters():
        if name in missing and not name.startswith(prefix):
            param.requires_grad_(True)  # a head the checkpoint lacks: train it, or it stays random
    return lm


def _batch_indices(
    n: int, size: int, micro: int, seed: int, perms: dict[int, np.ndarray]
) -> list[int]:
    """Micro-batch number ``micro`` of an endless stream of per-epoch permutations."""
    out = []
    for pos in range(micro * size, (micro + 1) * size):
        epoch = pos // n
        if epoch not in perms:
            perms[epoch] = np.random.default_rng([seed, epoch]).permutation(n)
        out.append(int(perms[epoch][pos % n]))
    return out


def _write_curve(folder: Path, history: list[dict[str, float]], stage: str) -> None:
    with open(folder / "loss.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["step", "loss", "lr"])
        writer.writeheader()
        writer.writerows(history)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3))
    ax.plot([h["step"] for h in history], [h["loss"] for h in history])
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.set_title(f"{stage} training loss")
    fig.tight_layout()
    fig.savefig(folder / "loss.png", dpi=100)
    plt.close(fig)


@dataclass
class _Stage:
    """One stage set up for training: the model, its trainable parameters and its schedule."""

    tm: TuneModel
    peft_model: Any
    trainable: dict[str, torch.nn.Parameter]
    opt: torch.optim.Optimizer
    sched: Any
    examples: list[Any]
    steps: int
    targets: list[str]
    device: torch.device
    batch: int  # examples per micro-batch


def _setup_stage(
    stage: str,
    cfg: Config,
    ds: Dataset,
    source: str,
    identity: dict[str, Any],
    previous: list[Path],
) -> _Stage:
    from peft import get_peft_model
    from transformers import AutoConfig, AutoTokenizer, get_scheduler

    tc, ex = cfg.tune, cfg.extract
    objective = OBJECTIVES[stage]
    settings = cfg.tune.options(stage)
    model_config = AutoConfig.from_pretrained(
        source, local_files_only=ex.offline, trust_remote_code=ex.trust_remote_code
    )
    encoder = is_encoder(model_config)
    if objective.causal_only and encoder:
        raise TuneError(
            f"tune.stages: {stage} trains a causal language model, but "
            f"extract.model={ex.model!r} is an encoder; use cpt (masked LM) or scft"
        )
    examples = objective.examples(ds, cfg, settings)
    if not examples:
        raise TuneError(
            f"{ds.name}: no {stage} examples (no item has text or no training "
            f"sequence qualifies); check text.attributes and tune.sft_tasks"
        )
    per_step = tc.batch_size * tc.grad_accum
    steps = math.ceil(tc.epochs * len(examples) / per_step) if tc.epochs else tc.steps
    device = resolve_device(tc.device, "tune.device")
    set_threads(tc.threads)
    tokenizer = ensure_pad_token(
        AutoTokenizer.from_pretrained(
            source, local_files_only=ex.offline, trust_remote_code=ex.trust_remote_code
        )
    )
    seed = tune_seed(cfg)
    torch.manual_seed(seed)  # a head the checkpoint lacks is initialised at random
    lm = _load_lm(source, encoder, ex.offline, ex.trust_remote_code)
    base = lm.base_model
    if previous:
        base = apply_adapters(base, previous, identity, merge=True)
        setattr(lm, lm.base_model_prefix, base)
    targets = target_modules(base, tc.target_modules)
    torch.manual_seed(seed)
    peft_model = get_peft_model(base, lora_config(tc, targets))
    if tc.gradient_checkpointing:
        lm.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    text = text_settings(cfg.text, ds.name)
    tm = TuneModel(
        lm=lm,
        base=base,
        tokenizer=tokenizer,
        encoder=encoder,
        max_tokens=tc.max_tokens,
        flatten_settings={k: text[k] for k in ("style", "max_chars", "domain")},
    )
    if objective.attach is not None:
        torch.manual_seed(seed)
        objective.attach(tm, ds, cfg, settings)
    lm.to(device)
    trainable = {n: p for n, p in lm.named_parameters() if p.requires_grad}
    opt = torch.optim.AdamW(trainable.values(), lr=tc.lr, weight_decay=0.0)
    sched = get_scheduler(
        tc.schedule, opt, num_warmup_steps=min(tc.warmup_steps, steps), num_training_steps=steps
    )
    batch = min(tc.batch_size, len(examples))
    return _Stage(tm, peft_model, trainable, opt, sched, examples, steps, targets, device, batch)


def train_stage(
    stage: str,
    cfg: Config,
    ds: Dataset,
    source: str,
    identity: dict[str, Any],
    previous: list[Path],
    folder: Path,
    progress: bool = True,
) -> dict[str, Any]:
    """Train one LoRA stage into ``folder`` (resuming from its checkpoint); return a summary."""
    tc = cfg.tune
    seed = tune_seed(cfg)
    st = _setup_stage(stage, cfg, ds, source, identity, previous)
    history: list[dict[str, float]] = []
    start, seconds = 0, 0.0
    folder.mkdir(parents=True, exist_ok=True)
    ckpt_path = folder / "checkpoint.pt"
    if ckpt_path.is_file():
        ckpt = load_checkpoint(ckpt_path, st.device)
        for name, value in ckpt["trainable"].items():
            st.trainable[name].data.copy_(value)
        st.opt.load_state_dict(ckpt["optimizer"])
        st.sched.load_state_dict(ckpt["scheduler"])
        start, history, seconds = ckpt["step"], ckpt["history"], ckpt["seconds"]
        log.info("resuming %s stage in %s after step %d", stage, folder, start)

    loss_fn = OBJECTIVES[stage].loss
    settings = cfg.tune.options(stage)
    precision = autocast(st.device, tune_dtype(cfg))
    perms: dict[int, np.ndarray] = {}
    st.tm.lm.train()
    bar = tqdm(
        total=st.steps, initial=start, desc=f"tune {stage}", unit="step", disable=not progress
    )
    for step in range(start, st.steps):
        began = time.perf_counter()
        total = 0.0
        for micro in range(tc.grad_accum):
            number = step * tc.grad_accum + micro
            torch.manual_seed(seed * 1_000_003 + number)  # dropout of this micro-batch
            rng = np.random.default_rng([seed, number])
            batch = [
                st.examples[i]
                for i in _batch_indices(len(st.examples), tc.batch_size, number, seed, perms)
            ]
            with precision:
                loss = loss_fn(st.tm, batch, rng, st.device, settings) / tc.grad_accum
            loss.backward()
            total += loss.item()
        torch.nn.utils.clip_grad_norm_(st.trainable.values(), 1.0)
        st.opt.step()
        st.sched.step()
        st.opt.zero_grad(set_to_none=True)
        seconds += time.perf_counter() - began
        history.append({"step": step + 1, "loss": round(total, 6), "lr": st.sched.get_last_lr()[0]})
        bar.update(1)
        bar.set_postfix(loss=f"{np.mean([h['loss'] for h in history[-10:]]):.4f}")
        if (step + 1) % tc.save_every == 0 and step + 1 < st.steps:
            save_atomic(
                {
                    "trainable": {n: p.detach() for n, p in st.trainable.items()},
                    "optimizer": st.opt.state_dict(),
                    "scheduler": st.sched.state_dict(),
                    "step": step + 1,
                    "history": history,
                    "seconds": seconds,
                },
                ckpt_path,
            )
    bar.close()
    return _finish_stage(stage, st, folder, history, seconds)


def _finish_stage(
    stage: str, st: _Stage, folder: Path, history: list[dict[str, float]], seconds: float
) -> dict[str, Any]:
    st.peft_model.save_pretrained(str(folder))
    save = OBJECTIVES[stage].save
    if save is not None:
        save(st.tm, folder)
    _write_curve(folder, history, stage)
    (folder / "checkpoint.pt").unlink(missing_ok=True)
    chance = OBJECTIVES[stage].chance
    return {
        "stage": stage,
        "examples": len(st.examples),
        "steps": st.steps,
        "targets": st.targets,
        "seconds": round(seconds, 3),
        "first_loss": history[0]["loss"],
        "last_loss": history[-1]["loss"],
        # the mean loss of the last 10 steps, against what a blind model scores
        "last_10_loss": round(float(np.mean([h["loss"] for h in history[-10:]])), 6),
        "chance_loss": round(chance(st.batch), 6) if chance else None,
    }


def _user_adapter(cfg: Config, identity: dict[str, Any]) -> tuple[Path, str]:
    assert cfg.tune.adapter is not None
    folder = Path(cfg.tune.adapter).expanduser()
    check_base(folder, identity)
    return folder, sha256_file(folder / ADAPTER_FILE)[:20]


def tune_chain(
    cfg: Config,
    ds: Dataset,
    dataset_key: str,
    progress: bool = True,
    fresh: bool = False,
    models_dir: Optional[Path] = None,
) -> TuneChain:
    """Run (or reuse) ``tune.adapter`` and then each of ``tune.stages`` on dataset ``ds``."""
    home = home_dir(cfg.paths.home)
    source, identity = models.resolve(cfg.extract.model, models_dir or home / "models")
    chain = TuneChain()
    if cfg.tune.adapter:
        folder, key = _user_adapter(cfg, identity)
        chain.folders.append(folder)
        chain.keys.append(key)
    text = text_identity(cfg, rewritten=False)  # stages learn from the flattened texts
    for stage in cfg.tune.stages:
        key = stage_key(
            "tune",
            {"stage": stage, "tune": stage_settings(cfg, stage), "text": text, "model": identity},
            (dataset_key, chain.keys[-1] if chain.keys else ""),
        )
        art = Artifact(home / "cache", "tune", key)
        if fresh or not art.done:
            _train_once(art, stage, cfg, ds, source, identity, chain, progress, fresh)
        for name in (ADAPTER_FILE, *OBJECTIVES[stage].files):
            art.file(name)  # verified against the checksum its manifest holds
        chain.folders.append(art.path)
        chain.keys.append(key)
    return chain


def _train_once(
    art: Artifact,
    stage: str,
    cfg: Config,
    ds: Dataset,
    source: str,
    identity: dict[str, Any],
    chain: TuneChain,
    progress: bool,
    fresh: bool,
) -> None:
    """Train stage ``stage`` into ``art`` unless another process finished it meanwhile."""
    with art.lock():
        if fresh or not art.done:
            folder = art.begin(fresh=fresh)
            summary = train_stage(
                stage, cfg, ds, source, identity, list(chain.folders), folder, progress
            )
            art.publish(
                {
                    "base_model": identity,
                    "dataset": ds.name,
                    "stages": [*(Path(f).name for f in chain.folders), stage],
                    "settings": stage_settings(cfg, stage),
                    **summary,
                },
                files=(ADAPTER_FILE, *OBJECTIVES[stage].files),
            )
            chain.trained.append(summary)
