"""Typed configuration: one frozen dataclass per section, YAML loading, dotted overrides.

Every problem (unknown key, wrong type, value out of range, cross-field conflict) is collected
and reported at once in a ``ConfigError``, so a user fixes a config in one pass.

A field that chooses a component (``adapt.adapter``, ``model.backbone``...) names its registry;
the choices, their help and the component's own settings come from there. A component's
settings are written flat in its section, ``<component>_<setting>`` (``adapt.moe_experts``).
A field whose value cannot change a result (threads, progress, where files live) says so once,
with ``key=False``; ``key_settings`` is the one place that reads the mark.
"""

from __future__ import annotations

import dataclasses
import functools
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Optional, Union

import yaml

from recxplore import registry
from recxplore.errors import ConfigError
from recxplore.registry import Registry

# In the cache key: always (True), never (False), or when the predicate on the section holds.
KeyRule = Union[bool, Callable[[Any], bool]]


def option(default: Any, help: str, key: KeyRule = True, **bounds: Any) -> Any:
    """A dataclass field with a one-line help text (shown by ``recxplore config``), whether it
    can change a result (``key``), and numeric bounds (``ge``, ``gt``, ``le``, ``lt``)."""
    meta = {"help": help, "key": key, **bounds}
    if isinstance(default, list):
        return field(default_factory=functools.partial(list, default), metadata=meta)
    return field(default=default, metadata=meta)


def choice(table: Registry[Any], default: Any, help: str, key: KeyRule = True) -> Any:
    """A field whose value is a name (or a list of names) registered in ``table``."""
    meta = {"help": help, "key": key, "registry": table}
    if isinstance(default, list):
        return field(default_factory=functools.partial(list, default), metadata=meta)
    return field(default=default, metadata=meta)


_opt = option


@dataclass(frozen=True, kw_only=True)
class Section:
    """Base of every section: holds the settings of the components its choice fields name."""

    components: dict[str, Any] = field(default_factory=dict, repr=False,
                                       metadata={"internal": True})

    def __post_init__(self) -> None:
        # Every component with settings has them, given or default, so equal configs compare
        # equal however they were made.
        filled = {entry.name: self.components.get(entry.name) or entry.config()
                  for table in _tables(type(self)) for entry in table.entries() if entry.config}
        object.__setattr__(self, "components", filled)

    def options(self, name: str) -> Any:
        """The settings of component ``name`` (its config dataclass)."""
        if name not in self.components:
            raise KeyError(f"{type(self).__name__}: no component {name!r} with settings")
        return self.components[name]


@dataclass(frozen=True, kw_only=True)
class DataConfig(Section):
    name: str = _opt("ml-100k", "dataset: ml-100k, ml-1m, amazon2014:<Cat>, amazon2018:<Cat>, "
                     "amazon2023:<Cat>, steam, yelp, atomic:<name>")
    data_dir: Optional[str] = _opt(None, "folder with the raw files (default: $RECXPLORE_HOME/raw)",
                                   key=False)  # the files' own signature is in the key
    source_file: Literal["auto", "reviews", "ratings", "core5"] = _opt(
        "auto", "Amazon 2014/2018: which interaction file to read; auto picks the first present "
        "of 5-core reviews, full reviews, ratings CSV")
    min_rating: Optional[float] = _opt(None, "keep interactions with rating >= this (null: keep all)")
    dedup: Literal["first", "last", "none"] = _opt(
        "first", "repeated (user, item) pairs: keep the first, the last, or all")
    filter: Literal["none", "kcore", "one_pass"] = _opt(
        "one_pass", "none; kcore = iterate until every user and item has the minimum count; "
        "one_pass = LLMEmb/LLM-ESR: one pass of user/item counts, then drop short users")
    user_core: int = _opt(3, "minimum interactions per user for the filter", ge=1)
    item_core: int = _opt(3, "minimum interactions per item for the filter", ge=1)
    min_seq_len: int = _opt(3, "users with fewer interactions after filtering are dropped "
                            "(3 = a train, a validation and a test item)", ge=1)


def _rewrites(text: Any) -> bool:
    return bool(text.rewrite != "none")


@dataclass(frozen=True, kw_only=True)
class TextConfig(Section):
    template: Literal["flatten"] = _opt("flatten", "how attributes become text: flatten = every "
                                        "attribute concatenated (the paper's best)")
    style: Literal["sentence", "kv"] = _opt(
        "sentence", "sentence = LLMEmb's 'The <domain> item has the following attributes: "
        "title is ...; ...'; kv = 'title: ...; genres: ...'")
    attributes: Optional[list[str]] = _opt(None, "attributes in order (null: the source's "
                                           "defaults, or every attribute for atomic files)")
    max_chars: int = _opt(100, "characters kept per attribute value", ge=1)
    domain: Optional[str] = _opt(None, "noun in the sentence style (null: the source's, e.g. "
                                 "movie)")
    rewrite: Literal["none", "keywords", "summary", "expansion"] = _opt(
        "none", "LLM rewriting of each item's text (generator settings: the generate section): "
        "none; keywords = a short keyword list; summary = one or two sentences; expansion = "
        "the attributes plus world knowledge about the item")
    rewrite_join: Literal["replace", "append"] = _opt(
        "replace", "the rewritten text replaces the flattened text, or is appended to it",
        key=_rewrites)
    rewrite_max_chars: int = _opt(400, "characters kept of a rewritten text (cut at a word)",
                                  key=_rewrites, ge=1)


@dataclass(frozen=True, kw_only=True)
class GenerateConfig(Section):
    model: str = _opt("smollm2-135m", "instruction LLM that rewrites texts: a packaged alias, a "
                      "local folder, a hub id, or `http` for an OpenAI-compatible endpoint")
    max_new_tokens: int = _opt(64, "most tokens generated per item", ge=1)
    temperature: float = _opt(0.0, "sampling temperature (0 = greedy)", ge=0.0)
    seed: int = _opt(0, "sampling seed (with temperature > 0)",
                     key=lambda g: g.temperature > 0)
    batch_size: int = _opt(16, "local: prompts per generate call (left padded)", key=False, ge=1)
    dtype: Literal["float32", "bfloat16", "float16"] = _opt("float32", "local: precision")
    device: str = _opt("auto", "local: auto (CUDA when present, else CPU), cpu, cuda, cuda:N",
                       key=False)
    base_url: Optional[str] = _opt(None, "http: the endpoint root, e.g. http://localhost:8000/v1 "
                                   "(vLLM, llama.cpp server) or https://api.openai.com/v1")
    api_model: Optional[str] = _opt(None, "http: the model name sent, e.g. gpt-4o")
    api_key_env: str = _opt("OPENAI_API_KEY", "http: environment variable holding the API key "
                            "(read at run time; never logged or written to disk)", key=False)
    concurrency: int = _opt(4, "http: requests in flight at once", key=False, ge=1)
    timeout: float = _opt(60.0, "http: seconds before a request is abandoned and retried",
                          key=False, gt=0.0)
    retries: int = _opt(4, "retries per item after a timeout, 429, 5xx or malformed reply "
                        "(backoff doubles from 1 s; a 429's Retry-After is honoured)",
                        key=False, ge=0)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.model == "http" and not (self.base_url and self.api_model):
            raise ConfigError(["generate.model=http: needs generate.base_url and "
                               "generate.api_model"])


@dataclass(frozen=True, kw_only=True)
class TuneConfig(Section):
    stages: list[str] = choice(
        registry.OBJECTIVES, [], "LoRA stages before extraction, in order ([] = frozen LLM; "
        "[cpt, sft] = the paper's best); each stage's key chains the one before it", key=False)
    lora_r: int = _opt(8, "LoRA rank", ge=1)
    lora_alpha: float = _opt(32, "LoRA scaling numerator (alpha / r scales the update)", gt=0.0)
    lora_dropout: float = _opt(0.1, "dropout on the LoRA input", ge=0.0, lt=1.0)
    target_modules: Optional[list[str]] = _opt(
        None, "module names LoRA wraps (null: every linear layer of the attention and MLP blocks, "
        "e.g. q/k/v/o/gate/up/down_proj in LLaMA, query/key/value/dense in BERT)")
    steps: int = _opt(100, "optimiser steps per stage (ignored when epochs is set)", ge=1)
    epochs: Optional[float] = _opt(None, "passes over a stage's examples; sets the steps", gt=0.0)
    batch_size: int = _opt(8, "examples per micro-batch", ge=1)
    grad_accum: int = _opt(1, "micro-batches per optimiser step", ge=1)
    lr: float = _opt(5e-4, "AdamW learning rate (LLMEmb: 2e-4 over 4000 steps; higher "
                     "suits the CPU-sized default budget)", gt=0.0)
    schedule: Literal["constant", "linear", "cosine"] = _opt(
        "linear", "learning-rate schedule after warm-up")
    warmup_steps: int = _opt(5, "linear warm-up steps", ge=0)
    max_tokens: int = _opt(128, "longest training sequence in tokens (longer ones are cut)",
                           ge=8)
    dtype: Literal["float32", "bfloat16"] = _opt(
        "float32", "compute precision: bfloat16 autocast where the hardware has it")
    gradient_checkpointing: bool = _opt(False, "recompute activations in the backward pass "
                                        "(less memory, ~30% slower)", key=False)
    seed: int = _opt(0, "seed for LoRA initialisation, example order, masks and dropout")
    save_every: int = _opt(25, "checkpoint every this many steps (an interrupted stage resumes "
                           "from the last one)", key=False, ge=1)
    merge: bool = _opt(True, "merge the adapters into the weights before extraction (the "
                       "embeddings are the same either way; merged is faster)", key=False)
    adapter: Optional[str] = _opt(None, "a LoRA adapter folder saved by `recxplore tune` (e.g. "
                                  "tuned on another machine), applied before tune.stages; "
                                  "keys use its checksum", key=False)
    device: str = _opt("auto", "auto (CUDA when present, else CPU), cpu, cuda, cuda:N",
                       key=False)
    threads: int = _opt(0, "torch CPU threads (0: torch's default)", key=False, ge=0)

    def __post_init__(self) -> None:
        super().__post_init__()
        problems = []
        if len(set(self.stages)) != len(self.stages):
            problems.append(f"tune.stages: each stage at most once; got {self.stages}")
        if self.target_modules is not None and not self.target_modules:
            problems.append("tune.target_modules: an empty list wraps nothing; use null for the "
                            "default projections")
        if problems:
            raise ConfigError(problems)


@dataclass(frozen=True, kw_only=True)
class ExtractConfig(Section):
    model: str = _opt("smollm2-135m", "extractor: a packaged alias (smollm2-135m, minilm-l6, "
                      "tfidf-svd), a Hugging Face hub id, a local model folder or a .gguf file")
    pooling: str = choice(registry.POOLINGS, "mean", "token aggregation over non-pad tokens")
    layer: int = _opt(-1, "hidden layer pooled: -1 = the last (after the final norm), k = the "
                      "output of block k (1-based), 0 = the input embeddings")
    dtype: Literal["float32", "bfloat16", "float16"] = _opt(
        "float32", "compute precision (float16 only on GPU); stored embeddings are float32")
    device: str = _opt("auto", "auto (CUDA when present, else CPU), cpu, cuda, cuda:N",
                       key=False)
    batch_size: int = _opt(32, "texts per forward pass (texts are sorted by length)", ge=1)
    max_tokens: Optional[int] = _opt(None, "longest tokenised text allowed (null: the model's "
                                     "context, at most 512)", ge=1)
    truncate: bool = _opt(False, "cut texts longer than max_tokens instead of refusing them")
    padding_side: Literal["right", "left"] = _opt("right", "where batches are padded")
    static_dim: int = _opt(256, "tfidf-svd: output dimension of the truncated SVD", ge=2)
    shard_size: int = _opt(1024, "rows per store shard (item-index ranges; the unit of resuming)",
                           ge=1)
    offline: bool = _opt(True, "never download: hub ids must already be in the local HF cache",
                         key=False)
    trust_remote_code: bool = _opt(False, "allow a hub model's own Python code to run", key=False)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.layer < -1:
            raise ConfigError([f"extract.layer: must be -1 (last) or >= 0; got {self.layer}"])


@dataclass(frozen=True, kw_only=True)
class AdaptConfig(Section):
    fusion: str = choice(registry.FUSIONS, "id", "how item vectors are made from IDs and "
                         "adapted LLM features (id = ID embeddings only: no text, no LLM)")
    adapter: str = choice(registry.ADAPTERS, "moe", "features -> hidden size, trained with the "
                          "backbone")
    pca: Optional[float] = _opt(
        256, "PCA before the adapter: >= 1 keeps that many components (capped at the feature "
        "size), in (0, 1) keeps that share of variance, null = no PCA")
    pca_whiten: bool = _opt(False, "scale PCA components to unit variance")
    pca_fit: Literal["all", "train"] = _opt(
        "all", "fit PCA on all items (the paper's practice) or only on items in training "
        "sequences")
    adapter_dropout: float = _opt(0.2, "dropout on the features before the adapter", ge=0.0,
                                  lt=1.0)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.pca is not None and (self.pca <= 0 or (self.pca > 1 and self.pca != int(self.pca))):
            raise ConfigError([f"adapt.pca: must be a whole number >= 1, a share in (0, 1), or "
                               f"null; got {self.pca}"])


@dataclass(frozen=True, kw_only=True)
class ModelConfig(Section):
    backbone: str = choice(registry.BACKBONES, "sasrec", "sequential model")
    hidden: int = _opt(64, "hidden size of item vectors and the backbone", ge=1)
    layers: int = _opt(2, "transformer blocks (sasrec, bert4rec) or GRU layers (gru4rec)", ge=1)
    heads: int = _opt(2, "attention heads (sasrec, bert4rec); must divide hidden", ge=1)
    dropout: float = _opt(0.2, "dropout probability in the backbone and on item vectors",
                          ge=0.0, lt=1.0)
    max_len: int = _opt(50, "most recent items the model sees per sequence", ge=2)
    mask_prob: float = _opt(0.2, "bert4rec: share of positions masked in training",
                            gt=0.0, lt=1.0)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.backbone in ("sasrec", "bert4rec") and self.hidden % self.heads:
            raise ConfigError([f"model.heads: must divide model.hidden={self.hidden} for "
                               f"{self.backbone}; got {self.heads}"])


@dataclass(frozen=True, kw_only=True)
class TrainConfig(Section):
    loss: str = choice(registry.LOSSES, "ce", "next-item loss")
    num_negatives: Optional[int] = _opt(
        None, "negatives per position for bce (default 1) or per batch for sampled (default 256)",
        ge=1)
    lr: float = _opt(1e-3, "AdamW learning rate", gt=0.0)
    weight_decay: float = _opt(0.0, "AdamW weight decay", ge=0.0)
    batch_size: int = _opt(128, "sequences (windows of up to model.max_len targets) per step", ge=1)
    epochs: int = _opt(200, "maximum training epochs", ge=1)
    patience: int = _opt(20, "stop after this many epochs without a better validation metric",
                         ge=1)
    select_metric: str = _opt("NDCG@10", "validation metric (full ranking) used for model "
                              "selection and early stopping")
    seed: int = _opt(42, "seed for initialisation, shuffling, negatives and dropout")
    device: str = _opt("auto", "auto (CUDA when present, else CPU), cpu, cuda, cuda:N; run keys "
                       "name a device other than the CPU", key=False)
    threads: int = _opt(0, "torch CPU threads (0: torch's default)", key=False, ge=0)
    grad_clip: Optional[float] = _opt(None, "clip the gradient norm to this value", gt=0.0)


@dataclass(frozen=True, kw_only=True)
class EvalConfig(Section):
    ks: list[int] = _opt([5, 10, 20], "cut-offs K for HR@K, NDCG@K and MRR@K")
    sampled_negatives: int = _opt(100, "uniform negatives per user for sampled ranking "
                                  "(excluding the user's items)", ge=1)
    mask_history: bool = _opt(True, "full ranking: exclude items already in the input sequence "
                              "(never the target), as RecBole does")
    batch_size: int = _opt(512, "users scored per evaluation batch", key=False, ge=1)

    def __post_init__(self) -> None:
        super().__post_init__()
        bad = [k for k in self.ks if not isinstance(k, int) or k < 1]
        if not self.ks or bad:
            raise ConfigError([f"eval.ks: must be a non-empty list of integers >= 1; got {self.ks}"])


@dataclass(frozen=True, kw_only=True)
class PathsConfig(Section):
    home: Optional[str] = _opt(None, "root of caches and runs (default: $RECXPLORE_HOME or "
                               "~/.cache/recxplore)", key=False)
    runs_dir: Optional[str] = _opt(None, "where run folders go (default: <home>/runs)", key=False)


SECTIONS: dict[str, type] = {
    "data": DataConfig,
    "text": TextConfig,
    "generate": GenerateConfig,
    "tune": TuneConfig,
    "extract": ExtractConfig,
    "adapt": AdaptConfig,
    "model": ModelConfig,
    "train": TrainConfig,
    "eval": EvalConfig,
    "paths": PathsConfig,
}


@dataclass(frozen=True, kw_only=True)
class Config:
    data: DataConfig = field(default_factory=DataConfig)
    text: TextConfig = field(default_factory=TextConfig)
    generate: GenerateConfig = field(default_factory=GenerateConfig)
    tune: TuneConfig = field(default_factory=TuneConfig)
    extract: ExtractConfig = field(default_factory=ExtractConfig)
    adapt: AdaptConfig = field(default_factory=AdaptConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    paths: PathsConfig = field(default_factory=PathsConfig)

    def to_dict(self) -> dict[str, dict[str, Any]]:
        return {name: section_dict(getattr(self, name)) for name in SECTIONS}

    def replace(self, **overrides: Any) -> Config:
        """A validated copy with dotted overrides: ``cfg.replace(**{"train.seed": 43})``."""
        raw = self.to_dict()
        for dotted, value in overrides.items():
            section, _, key = dotted.partition(".")
            raw.setdefault(section, {})[key] = value
        return from_dict(raw)


# ---------------------------------------------------------------------------------------------
# Sections as mappings, and what of them a cache key sees


def _own_fields(cls: type) -> list[dataclasses.Field[Any]]:
    return [f for f in dataclasses.fields(cls) if not f.metadata.get("internal")]


def _tables(cls: type) -> list[Registry[Any]]:
    return [f.metadata["registry"] for f in _own_fields(cls) if "registry" in f.metadata]


def component_fields(cls: type) -> dict[str, tuple[str, dataclasses.Field[Any]]]:
    """``<component>_<setting>`` -> (component, field) for every component a section's choice
    fields can name."""
    out = {}
    for table in _tables(cls):
        for entry in table.entries():
            for f in dataclasses.fields(entry.config) if entry.config else ():
                out[f"{entry.name}_{f.name}"] = (entry.name, f)
    return out


def section_dict(section: Section, keyed: bool = False) -> dict[str, Any]:
    """The section as a flat mapping (own fields, then each component's settings); with
    ``keyed``, only what can change a result, as cache keys see it."""
    out: dict[str, Any] = {}
    for f in _own_fields(type(section)):
        if not keyed or _in_key(f, section):
            out[f.name] = _plain(getattr(section, f.name))
    for flat, (name, f) in component_fields(type(section)).items():
        settings = section.options(name)
        if not keyed or _in_key(f, settings):
            out[flat] = _plain(getattr(settings, f.name))
    return out


def key_settings(section: Section) -> dict[str, Any]:
    """The settings of ``section`` that can change a result: the one reader of ``key=``."""
    return section_dict(section, keyed=True)


def neutral_keys() -> set[tuple[str, str]]:
    """(section, key) of every setting marked ``key=False``: what cannot change a result."""
    out = set()
    for name, cls in SECTIONS.items():
        out |= {(name, f.name) for f in _own_fields(cls) if f.metadata.get("key") is False}
        out |= {(name, flat) for flat, (_, f) in component_fields(cls).items()
                if f.metadata.get("key") is False}
    return out


def _in_key(f: dataclasses.Field[Any], owner: Any) -> bool:
    rule = f.metadata.get("key", True)
    return bool(rule(owner)) if callable(rule) else bool(rule)


def _plain(value: Any) -> Any:
    return list(value) if isinstance(value, list) else value


# ---------------------------------------------------------------------------------------------
# Validation


def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(tp))
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type_name(a) for a in typing.get_args(tp))
    if origin is list:
        return f"a list of {_type_name(typing.get_args(tp)[0])}"
    return {int: "an integer", float: "a number", str: "a string", bool: "true/false",
            type(None): "null"}.get(tp, str(tp))


def _coerce(value: Any, tp: Any) -> tuple[bool, Any]:
    """Return (ok, value converted to tp). Ints are accepted where floats are expected."""
    origin = typing.get_origin(tp)
    if origin is Literal:
        return (value in typing.get_args(tp), value)
    if origin in (typing.Union, types.UnionType):
        for arg in typing.get_args(tp):
            ok, converted = _coerce(value, arg)
            if ok:
                return True, converted
        return False, value
    if origin is list:
        if not isinstance(value, list):
            return False, value
        (item_tp,) = typing.get_args(tp)
        out = []
        for v in value:
            ok, converted = _coerce(v, item_tp)
            if not ok:
                return False, value
            out.append(converted)
        return True, out
    if tp is type(None):
        return value is None, value
    if tp is bool:
        return isinstance(value, bool), value
    if tp is int:
        return isinstance(value, int) and not isinstance(value, bool), value
    if tp is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        return ok, float(value) if ok else value
    if tp is str:
        return isinstance(value, str), value
    raise TypeError(f"unsupported config type {tp}")  # internal: a new field type needs support


def _range_problem(key: str, value: Any, meta: dict[str, Any]) -> Optional[str]:
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return None
    for bound, test, word in (("ge", lambda v, b: v >= b, ">="), ("gt", lambda v, b: v > b, ">"),
                              ("le", lambda v, b: v <= b, "<="), ("lt", lambda v, b: v < b, "<")):
        if bound in meta and not test(value, meta[bound]):
            return f"{key}: must be {word} {meta[bound]}; got {value!r}"
    return None


def _check_values(prefix: str, cls: type, values: dict[str, Any], problems: list[str]
                  ) -> Optional[Any]:
    """``cls(**values)`` after type and range checks; None (with problems added) if any fail."""
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in _own_fields(cls)}
    kwargs: dict[str, Any] = {}
    ok = True
    for key, value in values.items():
        ok_value, converted = _coerce(value, hints[key])
        if not ok_value:
            problems.append(f"{prefix}{key}: must be {_type_name(hints[key])}; got {value!r}")
            ok = False
            continue
        problem = _range_problem(f"{prefix}{key}", converted, dict(fields[key].metadata))
        if problem:
            problems.append(problem)
            ok = False
            continue
        kwargs[key] = _like_default(converted, fields[key].default)
    if not ok:
        return None
    try:
        return cls(**kwargs)
    except ConfigError as err:  # cross-field checks in __post_init__
        problems.extend(err.problems)
        return None


def _build_section(name: str, cls: type, values: Any, problems: list[str]) -> Any:
    if values is None:
        values = {}
    if not isinstance(values, dict):
        problems.append(f"{name}: must be a mapping of keys to values; got {values!r}")
        return None
    own = {f.name for f in _own_fields(cls)}
    routed = component_fields(cls)
    mine: dict[str, Any] = {}
    theirs: dict[str, dict[str, Any]] = {}
    ok = True
    for key, value in values.items():
        if key in own:
            mine[key] = value
        elif key in routed:
            component, f = routed[key]
            theirs.setdefault(component, {})[f.name] = value
        else:
            problems.append(f"{name}.{key}: unknown key; valid keys are "
                            f"{', '.join(sorted(own | set(routed)))}")
            ok = False
    components: dict[str, Any] = {}
    for component, given in theirs.items():
        settings_cls = next(t.entry(component).config for t in _tables(cls) if component in t)
        assert settings_cls is not None  # routed keys come from entries with settings
        built = _check_values(f"{name}.{component}_", settings_cls, given, problems)
        ok = ok and built is not None
        components[component] = built
    section = _check_values(f"{name}.", cls, mine, problems)
    if not ok or section is None:
        return None
    return dataclasses.replace(section, components=components) if components else section


def _like_default(value: Any, default: Any) -> Any:
    """A number written as its field's default is written (32 where the default is 32, 2.0
    where it is 2.0), so that a value equal to the default, given or not, and a config
    rebuilt by ``replace`` hash to the same cache keys."""
    if isinstance(value, bool) or isinstance(default, bool) or \
            not isinstance(value, (int, float)):
        return value
    if isinstance(default, int) and float(value).is_integer():
        return int(value)
    if isinstance(default, float):
        return float(value)
    return value


def _check_names(raw: dict[str, Any], problems: list[str]) -> None:
    """Registry names, checked on the raw values so they show even when a section has errors."""

    def value(section: str, key: str) -> Any:
        given = raw.get(section) if isinstance(raw.get(section), dict) else {}
        return given.get(key, getattr(SECTIONS[section](), key))

    for section, cls in SECTIONS.items():
        for f in _own_fields(cls):
            table = f.metadata.get("registry")
            if table is None:
                continue
            given = value(section, f.name)
            names = given if isinstance(given, list) else [given]
            for name in names:
                if isinstance(name, str) and name not in table:
                    problems.append(f"{section}.{f.name}: unknown {table.kind}; valid names are "
                                    f"{', '.join(table)}; got {name!r}")
                elif not isinstance(name, str):
                    problems.append(f"{section}.{f.name}: must be a {table.kind} name "
                                    f"({', '.join(table)}); got {name!r}")
    name = value("data", "name")
    problem = dataset_name_problem(name) if isinstance(name, str) else None
    if problem:
        problems.append(f"data.name: {problem}")


def dataset_name_problem(name: str) -> Optional[str]:
    """None if ``name`` is a registered family with the argument it needs, else what is wrong."""
    family, _, argument = name.partition(":")
    if family not in registry.DATASETS:
        examples = ", ".join(e.build.example for e in registry.DATASETS.entries())
        return f"unknown dataset {name!r}; valid forms are {examples}"
    source = registry.DATASETS[family]
    if source.needs_argument and not argument:
        return f"{family} needs a name after a colon, e.g. {source.example}; got {name!r}"
    if not source.needs_argument and argument:
        return f"{family} takes no ':' argument; got {name!r}"
    return None


STATIC_EXTRACTORS = ("tfidf-svd",)  # extractors that are not neural networks


def _check_cross_sections(cfg: Config, problems: list[str]) -> None:
    if (cfg.tune.stages or cfg.tune.adapter) and cfg.extract.model in STATIC_EXTRACTORS:
        problems.append(f"tune.stages: extract.model={cfg.extract.model!r} is not a neural "
                        f"network and cannot be tuned; use [] or a transformers extractor")
    if cfg.train.loss == "ce" and cfg.train.num_negatives is not None:
        problems.append("train.num_negatives: not used by train.loss='ce' (softmax over all "
                        "items); remove it or choose loss 'bce' or 'sampled'")
    if not _is_metric_name(cfg.train.select_metric, cfg.eval.ks):
        problems.append(f"train.select_metric: must be HR@K, NDCG@K or MRR@K with K in eval.ks="
                        f"{cfg.eval.ks}; got {cfg.train.select_metric!r}")


def _is_metric_name(name: str, ks: list[int]) -> bool:
    metric, _, k = name.partition("@")
    return metric in ("HR", "NDCG", "MRR") and k.isdigit() and int(k) in ks


def parse_override(text: str) -> tuple[list[str], Any]:
    """``"train.lr=0.01"`` -> (["train", "lr"], 0.01). Values are parsed as YAML scalars/lists."""
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise ConfigError([f"override {text!r}: expected section.key=value, e.g. train.seed=43"])
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError as err:
        raise ConfigError([f"override {text!r}: the value is not valid YAML ({err})"]) from None
    return key.strip().split("."), value


def from_dict(raw: dict[str, Any], overrides: Optional[list[str]] = None) -> Config:
    """Validate a nested mapping plus dotted overrides into a ``Config``; all problems at once."""
    problems: list[str] = []
    merged: dict[str, Any] = {k: (dict(v) if isinstance(v, dict) else v) for k, v in raw.items()}
    for text in overrides or []:
        try:
            path, value = parse_override(text)
        except ConfigError as err:
            problems.extend(err.problems)
            continue
        if len(path) != 2:
            problems.append(f"override {text!r}: expected exactly section.key, e.g. model.hidden=64")
            continue
        section, key = path
        if not isinstance(merged.get(section, {}), dict):
            continue  # reported below as a malformed section
        merged.setdefault(section, {})[key] = value
    built: dict[str, Any] = {}
    for name, values in merged.items():
        if name not in SECTIONS:
            problems.append(f"{name}: unknown section; valid sections are {', '.join(SECTIONS)}")
            continue
        built[name] = _build_section(name, SECTIONS[name], values, problems)
    _check_names(merged, problems)
    if problems:
        raise ConfigError(problems)
    cfg = Config(**built)
    _check_cross_sections(cfg, problems)
    if problems:
        raise ConfigError(problems)
    return cfg


def load(path: Optional[str | Path] = None, overrides: Optional[list[str]] = None) -> Config:
    """Load a YAML config file (or the embedded defaults when ``path`` is None)."""
    raw: dict[str, Any] = {}
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise ConfigError([f"config file {path}: not found; pass an existing YAML file or "
                               f"omit --config for the defaults"])
        try:
            raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except (yaml.YAMLError, UnicodeDecodeError) as err:
            raise ConfigError([f"config file {path}: not valid YAML ({err})"]) from None
        if not isinstance(raw, dict):
            raise ConfigError([f"config file {path}: must be a mapping of sections; got "
                               f"{type(raw).__name__}"])
    return from_dict(raw, overrides)


def dump(cfg: Config) -> str:
    return yaml.safe_dump(cfg.to_dict(), sort_keys=False)


def _field_line(key: str, tp: Any, f: dataclasses.Field[Any], default: Any) -> str:
    table = f.metadata.get("registry")
    kind = _type_name(tp)
    if table is not None:
        names = "one of " + ", ".join(repr(n) for n in table)
        kind = f"a list, each {names}" if typing.get_origin(tp) is list else names
    return f"  {key} ({kind}, default {default!r}): {f.metadata.get('help', '')}"


def _default(f: dataclasses.Field[Any]) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    assert f.default_factory is not dataclasses.MISSING
    return f.default_factory()


def describe() -> str:
    """Every section and key with its type, default and help, for ``--help``-style output; a
    choice lists its registered names, and each component's settings follow it."""
    lines = []
    for name, cls in SECTIONS.items():
        lines.append(f"{name}:")
        hints = typing.get_type_hints(cls)
        for f in _own_fields(cls):
            lines.append(_field_line(f.name, hints[f.name], f, _default(f)))
            table = f.metadata.get("registry")
            for entry in table.entries() if table is not None else ():
                lines.append(f"    {entry.name}: {entry.help}")
                settings = entry.config
                for sf in dataclasses.fields(settings) if settings else ():
                    lines.append("  " + _field_line(f"{entry.name}_{sf.name}",
                                                    typing.get_type_hints(settings)[sf.name],
                                                    sf, _default(sf)))
    return "\n".join(lines)
