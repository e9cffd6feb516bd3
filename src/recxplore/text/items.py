"""The item texts of a dataset, aligned with its item index (row 0, padding, is empty)."""

from __future__ import annotations

import dataclasses
from typing import Any

from recxplore.config import Config, TextConfig
from recxplore.data.dataset import Dataset
from recxplore.data.sources import source_of, split_name
from recxplore.text.flatten import flatten

_REWRITE_KEYS = ("rewrite_join", "rewrite_max_chars")


def text_settings(cfg: TextConfig, dataset_name: str) -> dict:
    """The resolved attribute list and domain: the config's, else the source's defaults."""
    source = source_of(dataset_name)
    attributes = cfg.attributes if cfg.attributes is not None else source.text_attributes
    domain = cfg.domain or source.domain or split_name(dataset_name)[1].replace("_", " ").lower()
    return {"attributes": list(attributes) if attributes is not None else None,
            "domain": domain or "catalogue", "style": cfg.style, "max_chars": cfg.max_chars}


def item_texts(ds: Dataset, cfg: TextConfig) -> list[str]:
    """The flattened texts (before any LLM rewriting)."""
    settings = text_settings(cfg, ds.name)
    return [""] + [flatten(meta, **settings) for meta in ds.item_meta[1:]]


def text_fields(cfg: TextConfig) -> dict[str, Any]:
    """The text settings as cache keys see them; without rewriting, its settings are left out
    (so the keys of stores and runs made before rewriting existed still hold)."""
    text = dataclasses.asdict(cfg)
    if cfg.rewrite == "none":
        for key in _REWRITE_KEYS:
            text.pop(key)
    return text


def text_identity(cfg: Config, rewritten: bool = True) -> dict[str, Any]:
    """What cache keys need to know about the texts: the flattening settings, plus the
    rewriting mode and generator when ``rewritten`` and the config rewrites."""
    if rewritten and cfg.text.rewrite != "none":
        from recxplore.text.rewrite import generator_identity

        text = {**text_fields(cfg.text), "generator": generator_identity(cfg)}
    else:
        text = text_fields(dataclasses.replace(cfg.text, rewrite="none"))
    return {**text, **text_settings(cfg.text, cfg.data.name)}
