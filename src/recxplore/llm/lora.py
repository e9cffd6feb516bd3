"""LoRA through PEFT: which modules to wrap, and applying saved adapters to an extractor.

Adapters are trained on, and applied to, the extractor's base model (the module that
``AutoModel`` loads, without a language-model head), so the same adapter folder serves tuning
with a head and extraction without one. Stacked stages are applied in order; every adapter but
the last is merged into the weights (that is how the next stage was trained on top of it).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional

import torch

from recxplore.errors import RecxploreError

MANIFEST = "manifest.json"
ADAPTER_FILE = "adapter_model.safetensors"
# the item vectors a stage learns itself (SAID), row 0 padding; extraction stores them
ITEMS_FILE = "items.safetensors"


class TuneError(RecxploreError):
    """Settings or inputs a tuning stage cannot use; raised before any training."""


def linear_names(model: torch.nn.Module) -> list[str]:
    """The distinct last name components of the model's linear layers (LoRA targets)."""
    return sorted(
        {
            name.rsplit(".", 1)[-1]
            for name, module in model.named_modules()
            if isinstance(module, torch.nn.Linear)
        }
    )


def target_modules(model: torch.nn.Module, configured: Optional[list[str]]) -> list[str]:
    available = linear_names(model)
    if configured is None:
        if not available:
            raise TuneError("the extractor has no linear layers for LoRA to wrap")
        return available
    unknown = [name for name in configured if name not in available]
    if unknown:
        raise TuneError(
            f"tune.target_modules: {unknown} not in the model; its linear layers are {available}"
        )
    return list(configured)


def lora_config(tc: Any, targets: list[str]) -> Any:
    from peft import LoraConfig

    return LoraConfig(
        r=tc.lora_r,
        lora_alpha=tc.lora_alpha,
        lora_dropout=tc.lora_dropout,
        target_modules=targets,
        bias="none",
    )


def read_manifest(folder: Path) -> dict[str, Any]:
    path = Path(folder) / MANIFEST
    if not (Path(folder) / ADAPTER_FILE).is_file() or not path.is_file():
        raise TuneError(
            f"{folder}: not an adapter saved by `recxplore tune` (needs "
            f"{ADAPTER_FILE} and {MANIFEST}); pass the folder `tune` printed"
        )
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as err:
        raise TuneError(f"{path}: unreadable ({err}); rerun `recxplore tune`") from None


def check_base(folder: Path, identity: dict[str, Any]) -> None:
    """Refuse an adapter trained for another base model (it would load and silently mislead)."""
    trained_on = read_manifest(folder).get("base_model")
    if trained_on != identity:
        raise TuneError(
            f"{folder}: this adapter was trained on base model {trained_on}, but the "
            f"extractor is {identity}; tune again for this model or set "
            f"extract.model to the adapter's base"
        )


def apply_adapters(
    model: torch.nn.Module, folders: list[Path], identity: dict[str, Any], merge: bool = True
) -> torch.nn.Module:
    """``model`` with the adapters applied in order: every one but the last merged, the last
    merged when ``merge`` (else kept as LoRA layers). Returns the base module to call."""
    from peft import PeftModel

    for i, folder in enumerate(folders):
        check_base(folder, identity)
        peft_model = PeftModel.from_pretrained(model, str(folder))
        if merge or i < len(folders) - 1:
            model = peft_model.merge_and_unload()
        else:
            model = peft_model.get_base_model()
    return model.eval()
