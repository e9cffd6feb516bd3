"""Small helpers every torch stage shares: devices, threads, atomic checkpoints, tokenizers."""

from __future__ import annotations

import functools
import os
import pickle
from pathlib import Path
from typing import Any

import torch

from recxplore.config.fields import device_problem
from recxplore.errors import ArtifactError, ConfigError


def device_type(name: str) -> str:
    """The device type a ``*.device`` setting names, without checking that this machine has it:
    the run keys of CUDA runs are computed on a CPU too, when their results are read there."""
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(name).type


def resolve_device(name: str, key: str) -> torch.device:
    """The torch device of the setting ``key`` (say ``train.device``); a clear error, rather than
    torch's assertion deep in a run, when it names CUDA on a machine without it."""
    problem = device_problem(name)
    if problem:
        raise ConfigError([f"{key}: {problem}"])
    device = torch.device(device_type(name) if name == "auto" else name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(
            [
                f"{key}={name}: torch {torch.__version__} sees no CUDA device on this "
                f"machine; set {key}=cpu or {key}=auto"
            ]
        )
    return device


def set_threads(threads: int) -> None:
    """Use ``threads`` CPU threads (0: leave torch's default)."""
    if threads:
        torch.set_num_threads(threads)


@functools.cache
def fast_bfloat16(device_type: str) -> bool:
    """Whether ``device_type`` computes in bfloat16 natively: every CUDA device is taken to
    (pre-Ampere GPUs emulate it; set ``train.precision=float32`` there), a CPU when it has
    AVX512-BF16 or AMX (read from /proc/cpuinfo; elsewhere taken not to)."""
    if device_type == "cuda":
        return True
    if device_type != "cpu":
        return False
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def resolve_precision(precision: str, device_type: str) -> str:
    """``train.precision`` as run: ``auto`` is bfloat16 where the device has it natively."""
    if precision == "auto":
        return "bfloat16" if fast_bfloat16(device_type) else "float32"
    return precision


def autocast(device: torch.device, precision: str) -> Any:
    """The autocast context of a resolved precision on ``device`` (a no-op for float32)."""
    assert precision in ("float32", "bfloat16"), f"resolve {precision!r} first"
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bfloat16")


def save_atomic(obj: Any, path: Path) -> None:
    """torch.save to a temporary name, then rename: a crash never leaves half a checkpoint, and
    a full disk is an error naming the file rather than torch's "unexpected pos"."""
    tmp = path.with_name(path.name + ".tmp")
    try:
        torch.save(obj, tmp)
    except (RuntimeError, OSError) as err:
        tmp.unlink(missing_ok=True)
        raise ArtifactError(
            f"{path}: could not be written ({err}); the disk may be full: free some space and "
            f"rerun the same command, which resumes from the last checkpoint"
        ) from None
    os.replace(tmp, path)


def load_checkpoint(path: Path, device: Any = "cpu") -> Any:
    """A checkpoint of tensors, numbers and plain containers. Nothing else is unpickled, so a
    checkpoint from another machine cannot run code here."""
    try:
        return torch.load(path, map_location=device, weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError, OSError) as err:
        why = (
            "it holds Python objects besides tensors, numbers and containers"
            if isinstance(err, pickle.UnpicklingError)
            else str(err).splitlines()[0][:160]
        )
        raise ArtifactError(
            f"{path}: not a checkpoint recxplore can load safely ({why}); delete it to start "
            f"that run or stage again from the beginning"
        ) from None


def ensure_pad_token(tokenizer: Any) -> Any:
    """LLaMA-style tokenizers have no pad token; padding is masked out, so EOS (or UNK) serves."""
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token or tokenizer.unk_token
    return tokenizer
