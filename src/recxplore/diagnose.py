"""``recxplore diagnose``: the health of the features a configuration extracts (and its PQ codes).

Runs the chain up to the store through the cache, then reports ``extract.diagnose`` numbers for
the stored features, the same for the PCA-reduced features the adapter reads, and for a PQ
adapter how many distinct code tuples the items have.
"""

from __future__ import annotations

from typing import Any

from recxplore.cache import home_dir
from recxplore.config import STATIC_EXTRACTORS, Config
from recxplore.extract.diagnose import distinct_codes, feature_health
from recxplore.extract.stage import prompt_template
from recxplore.extract.store import open_store
from recxplore.llm import models
from recxplore.pipeline import features, item_inputs
from recxplore.text.rewrite import final_texts
from recxplore.train.run import needs


def token_counts(cfg: Config, texts: list[str]) -> list[int]:
    """Tokens per text as the extractor sees it (words for a static extractor)."""
    if cfg.extract.model in STATIC_EXTRACTORS:
        return [len(t.split()) for t in texts]
    from transformers import AutoTokenizer

    source, _ = models.resolve(cfg.extract.model, home_dir(cfg.paths.home) / "models")
    tokenizer = AutoTokenizer.from_pretrained(
        source,
        local_files_only=cfg.extract.offline,
        trust_remote_code=cfg.extract.trust_remote_code,
    )
    template = prompt_template(cfg)
    wrapped = [template.replace("{text}", t) for t in texts]
    return [len(ids) for ids in tokenizer(wrapped, add_special_tokens=True)["input_ids"]]


def diagnose(cfg: Config, progress: bool = True) -> dict[str, Any]:
    ds, dataset_key, _, store = features(cfg, progress)
    texts = final_texts(ds, cfg, progress)[1:]
    stored = open_store(store.path, ds).embeddings[1:]
    out: dict[str, Any] = {
        "store": str(store.path),
        "extractor": cfg.extract.model,
        "pooling": cfg.extract.pooling,
        "pool_span": cfg.extract.pool_span,
        "stored": feature_health(stored, texts, token_counts(cfg, texts)),
    }
    feature_cell = cfg.replace(**{"adapt.fusion": "replace"})  # what a feature cell would read
    wanted = needs(feature_cell)
    inputs = item_inputs(feature_cell, ds, dataset_key, progress)
    assert inputs.features is not None
    out["adapter_input"] = feature_health(inputs.features[1:], texts)
    if "codes" in wanted and inputs.codes is not None:
        out["distinct_code_tuples"] = distinct_codes(inputs.codes)
    return out
