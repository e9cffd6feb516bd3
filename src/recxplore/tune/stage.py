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
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from recxplore.cache import Artifact, artifact_key, home_dir, sha256_file
from recxplore.config import Config
from recxplore.data.dataset import Dataset
from recxplore.data.prepare import prepare
from recxplore.extract import models
from recxplore.text.items import text_identity, text_settings
from recxplore.train.loop import resolve_device, save_atomic
from recxplore.tune import data
from recxplore.tune.lora import (ADAPTER_FILE, TuneError, apply_adapters, check_base,
                                 lora_config, target_modules)
from recxplore.tune.objectives import OBJECTIVES, TuneModel

log = logging.getLogger(__name__)

EXAMPLES = {"cpt": data.cpt_examples, "sft": data.sft_examples, "scft": data.scft_examples}
# Settings that do not change what a stage learns.
NOT_IN_KEY = ("stages", "device", "threads", "save_every", "merge", "adapter",
              "gradient_checkpointing")
STAGE_PREFIXES = ("cpt_", "sft_", "scft_")


def stage_settings(cfg: Config, stage: str) -> dict[str, Any]:
    """The tune settings that stage ``stage`` depends on (other stages' options left out)."""
    out = {}
    for key, value in dataclasses.asdict(cfg.tune).items():
        own = not key.startswith(STAGE_PREFIXES) or key.startswith(stage + "_")
        if key not in NOT_IN_KEY and own:
            out[key] = value
    return out


def is_encoder(config: Any) -> bool:
    """A masked-LM architecture (BERT-like): CPT is masked LM and SFT is not possible."""
    from transformers.models.auto.modeling_auto import MODEL_FOR_MASKED_LM_MAPPING_NAMES

    return config.model_type in MODEL_FOR_MASKED_LM_MAPPING_NAMES


def _load_lm(source: str, encoder: bool, offline: bool, trust_remote_code: bool) -> Any:
    from transformers import AutoModelForCausalLM, AutoModelForMaskedLM

    cls = AutoModelForMaskedLM if encoder else AutoModelForCausalLM
    lm, info = cls.from_pretrained(source, local_files_only=offline,
                                   trust_remote_code=trust_remote_code, output_loading_info=True)
    lm.requires_grad_(False)
    prefix = lm.base_model_prefix + "."
    missing = set(info.get("missing_keys", []))
    for name, param in lm.named_parameters():
        if name in missing and not name.startswith(prefix):
            param.requires_grad_(True)  # a head the checkpoint lacks: train it, or it stays random
    return lm


def _batch_indices(n: int, size: int, micro: int, seed: int, perms: dict[int, np.ndarray]
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


def train_stage(stage: str, cfg: Config, ds: Dataset, source: str, identity: dict[str, Any],
                previous: list[Path], folder: Path, progress: bool = True) -> dict[str, Any]:
    """Train one LoRA stage into ``folder`` (resuming from its checkpoint); return a summary."""
    from peft import get_peft_model
    from transformers import AutoConfig, AutoTokenizer, get_scheduler

    tc, ex = cfg.tune, cfg.extract
    model_config = AutoConfig.from_pretrained(source, local_files_only=ex.offline,
                                              trust_remote_code=ex.trust_remote_code)
    encoder = is_encoder(model_config)
    if stage == "sft" and encoder:
        raise TuneError(f"tune.stages: sft trains a causal language model, but "
                        f"extract.model={ex.model!r} is an encoder; use cpt (masked LM) or scft")
    examples = EXAMPLES[stage](ds, cfg)
    if not examples:
        raise TuneError(f"{ds.name}: no {stage} examples (no item has text or no training "
                        f"sequence qualifies); check text.attributes and tune.sft_tasks")
    per_step = tc.batch_size * tc.grad_accum
    steps = math.ceil(tc.epochs * len(examples) / per_step) if tc.epochs else tc.steps
    device = resolve_device(tc.device, "tune.device")
    if tc.threads:
        torch.set_num_threads(tc.threads)
    tokenizer = AutoTokenizer.from_pretrained(source, local_files_only=ex.offline,
                                              trust_remote_code=ex.trust_remote_code)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token or tokenizer.unk_token
    torch.manual_seed(tc.seed)  # a head the checkpoint lacks is initialised at random
    lm = _load_lm(source, encoder, ex.offline, ex.trust_remote_code)
    base = lm.base_model
    if previous:
        base = apply_adapters(base, previous, identity, merge=True)
        setattr(lm, lm.base_model_prefix, base)
    targets = target_modules(base, tc.target_modules)
    torch.manual_seed(tc.seed)
    peft_model = get_peft_model(base, lora_config(tc, targets))
    if tc.gradient_checkpointing:
        lm.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    settings = text_settings(cfg.text, ds.name)
    log_temperature = torch.nn.Parameter(torch.tensor(math.log(tc.scft_temperature)),
                                         requires_grad=stage == "scft")
    tm = TuneModel(lm=lm, base=base, tokenizer=tokenizer, encoder=encoder,
                   max_tokens=tc.max_tokens, mlm_prob=tc.cpt_mlm_prob, scft_drop=tc.scft_drop,
                   log_temperature=log_temperature,
                   flatten_settings={k: settings[k] for k in ("style", "max_chars", "domain")})
    lm.to(device)
    log_temperature.data = log_temperature.data.to(device)
    trainable = {n: p for n, p in lm.named_parameters() if p.requires_grad}
    if stage == "scft":
        trainable["log_temperature"] = log_temperature
    opt = torch.optim.AdamW(trainable.values(), lr=tc.lr, weight_decay=0.0)
    sched = get_scheduler(tc.schedule, opt, num_warmup_steps=min(tc.warmup_steps, steps),
                          num_training_steps=steps)
    history: list[dict[str, float]] = []
    start, seconds = 0, 0.0
    folder.mkdir(parents=True, exist_ok=True)
    ckpt_path = folder / "checkpoint.pt"
    if ckpt_path.is_file():
        ckpt = torch.load(ckpt_path, map_location=device, weights_only=False)
        for name, value in ckpt["trainable"].items():
            trainable[name].data.copy_(value)
        opt.load_state_dict(ckpt["optimizer"])
        sched.load_state_dict(ckpt["scheduler"])
        start, history, seconds = ckpt["step"], ckpt["history"], ckpt["seconds"]
        log.info("resuming %s stage in %s after step %d", stage, folder, start)

    objective = OBJECTIVES[stage]
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=tc.dtype == "bfloat16")
    perms: dict[int, np.ndarray] = {}
    lm.train()
    bar = tqdm(total=steps, initial=start, desc=f"tune {stage}", unit="step",
               disable=not progress)
    for step in range(start, steps):
        began = time.perf_counter()
        total = 0.0
        for micro in range(tc.grad_accum):
            number = step * tc.grad_accum + micro
            torch.manual_seed(tc.seed * 1_000_003 + number)  # dropout of this micro-batch
            rng = np.random.default_rng([tc.seed, number])
            batch = [examples[i] for i in _batch_indices(len(examples), tc.batch_size, number,
                                                          tc.seed, perms)]
            with autocast:
                loss = objective(tm, batch, rng, device) / tc.grad_accum
            loss.backward()
            total += loss.item()
        torch.nn.utils.clip_grad_norm_(trainable.values(), 1.0)
        opt.step()
        sched.step()
        opt.zero_grad(set_to_none=True)
        seconds += time.perf_counter() - began
        history.append({"step": step + 1, "loss": round(total, 6),
                        "lr": sched.get_last_lr()[0]})
        bar.update(1)
        bar.set_postfix(loss=f"{np.mean([h['loss'] for h in history[-10:]]):.4f}")
        if (step + 1) % tc.save_every == 0 and step + 1 < steps:
            save_atomic({"trainable": {n: p.detach() for n, p in trainable.items()},
                          "optimizer": opt.state_dict(), "scheduler": sched.state_dict(),
                          "step": step + 1, "history": history, "seconds": seconds}, ckpt_path)
    bar.close()
    peft_model.save_pretrained(str(folder))
    _write_curve(folder, history, stage)
    ckpt_path.unlink(missing_ok=True)
    return {"stage": stage, "examples": len(examples), "steps": steps,
            "targets": targets, "seconds": round(seconds, 3),
            "first_loss": history[0]["loss"], "last_loss": history[-1]["loss"],
            "final_temperature": math.exp(log_temperature.item()) if stage == "scft" else None}


def _user_adapter(cfg: Config, identity: dict[str, Any]) -> tuple[Path, str]:
    folder = Path(cfg.tune.adapter).expanduser()
    check_base(folder, identity)
    return folder, sha256_file(folder / ADAPTER_FILE)[:20]


def tune_chain(cfg: Config, progress: bool = True, fresh: bool = False
               ) -> tuple[list[Path], list[str], list[dict[str, Any]]]:
    """Run (or reuse) ``tune.adapter`` and then each of ``tune.stages``; return the adapter
    folders in order, their keys, and a summary per stage trained now."""
    home = home_dir(cfg.paths.home)
    ds, data_art = prepare(cfg.data, home)
    source, identity = models.resolve(cfg.extract.model, home / "models")
    folders: list[Path] = []
    keys: list[str] = []
    if cfg.tune.adapter:
        folder, key = _user_adapter(cfg, identity)
        folders.append(folder)
        keys.append(key)
    text = text_identity(cfg, rewritten=False)  # stages learn from the flattened texts
    trained = []
    for stage in cfg.tune.stages:
        key = artifact_key("tune", {"stage": stage, "tune": stage_settings(cfg, stage),
                                    "text": text, "model": identity},
                           (data_art.key, keys[-1] if keys else ""))
        art = Artifact(home / "cache", "tune", key)
        with art.lock():
            if fresh or not art.done:
                folder = art.begin(fresh=fresh)
                summary = train_stage(stage, cfg, ds, source, identity, list(folders), folder,
                                      progress)
                art.publish({"base_model": identity, "dataset": ds.name,
                             "stages": [*(Path(f).name for f in folders), stage],
                             "settings": stage_settings(cfg, stage), **summary})
                trained.append(summary)
        folders.append(art.path)
        keys.append(key)
    return folders, keys, trained

