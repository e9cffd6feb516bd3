"""The item texts of a dataset, aligned with its item index (row 0, padding, is empty)."""

from __future__ import annotations

from recxplore.config import TextConfig
from recxplore.data.dataset import Dataset
from recxplore.data.sources import source_of, split_name
from recxplore.text.flatten import flatten
from recxplore.text.noise import noisy_meta


def text_settings(cfg: TextConfig, dataset_name: str) -> dict:
    """The resolved attribute list and domain: the config's, else the source's defaults."""
    source = source_of(dataset_name)
    attributes = cfg.attributes if cfg.attributes is not None else source.text_attributes
    domain = cfg.domain or source.domain or split_name(dataset_name)[1].replace("_", " ").lower()
    return {
        "attributes": list(attributes) if attributes is not None else None,
        "domain": domain or "catalogue",
        "style": cfg.style,
        "max_chars": cfg.max_chars,
    }


def item_texts(ds: Dataset, cfg: TextConfig) -> list[str]:
    """The flattened texts (before any LLM rewriting), of noisier metadata when ``text.noise``
    says so."""
    settings = text_settings(cfg, ds.name)
    return [""] + [flatten(meta, **settings) for meta in noisy_meta(ds.item_meta, cfg)[1:]]
