"""The ten config sections: one frozen, keyword-only dataclass each, every field with its help.

Cross-field checks live in each section's ``__post_init__`` and raise ``ConfigError``; a
component's own settings live beside its code, not here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, Optional

from recxplore import registry
from recxplore.config.fields import RESOLVED, Section, choice, device_problem, option
from recxplore.errors import ConfigError

_opt = option


@dataclass(frozen=True, kw_only=True)
class DataConfig(Section):
    name: str = _opt(
        "ml-100k",
        "dataset: ml-100k, ml-1m, amazon2014:<Cat>, amazon2018:<Cat>, "
        "amazon2023:<Cat>, steam, yelp, atomic:<name>",
    )
    data_dir: Optional[str] = _opt(
        None, "folder with the raw files (default: $RECXPLORE_HOME/raw)", key=False
    )  # the files' own signature is in the key
    source_file: Literal["auto", "reviews", "ratings", "core5"] = _opt(
        "auto",
        "Amazon 2014/2018: which interaction file to read; auto picks the first present "
        "of 5-core reviews, full reviews, ratings CSV",
    )
    min_rating: Optional[float] = _opt(
        None, "keep interactions with rating >= this (null: keep all)"
    )
    dedup: Literal["first", "last", "none"] = _opt(
        "first", "repeated (user, item) pairs: keep the first, the last, or all"
    )
    filter: Literal["none", "kcore", "one_pass"] = _opt(
        "one_pass",
        "none; kcore = iterate until every user and item has the minimum count; "
        "one_pass = LLMEmb/LLM-ESR: one pass of user/item counts, then drop short users",
    )
    user_core: int = _opt(3, "minimum interactions per user for the filter", ge=1)
    item_core: int = _opt(3, "minimum interactions per item for the filter", ge=1)
    min_seq_len: int = _opt(
        3,
        "users with fewer interactions after filtering are dropped "
        "(3 = a train, a validation and a test item)",
        ge=1,
    )
    # The regime: thinning and the cold-start split, applied to the prepared dataset in
    # this order (recxplore.data.regime); each in a key only when it is set.
    user_share: float = _opt(
        1.0,
        "keep this share of users, drawn at random with data.sample_seed (1 = all)",
        key=lambda d: d.user_share < 1,
        gt=0.0,
        le=1.0,
    )
    interaction_share: float = _opt(
        1.0,
        "keep this share of each user's interactions, drawn at random with data.sample_seed, "
        "in their order (1 = all)",
        key=lambda d: d.interaction_share < 1,
        gt=0.0,
        le=1.0,
    )
    sample_seed: int = _opt(
        0,
        "seed of data.user_share and data.interaction_share",
        key=lambda d: d.user_share < 1 or d.interaction_share < 1,
    )
    max_history: Optional[int] = _opt(
        None,
        "keep each user's most recent N interactions (null: all); the catalogue keeps every "
        "item (items left without interactions stay candidates)",
        key=lambda d: d.max_history is not None,
    )
    cold_share: float = _opt(
        0.0,
        "cold-start split: the newest share of items (by first interaction) never occur in "
        "training sequences or validation inputs, only as targets (0 = leave-one-out)",
        key=lambda d: d.cold_share > 0,
        ge=0.0,
        lt=1.0,
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.max_history is not None and self.max_history < 3:
            raise ConfigError(
                [
                    f"data.max_history={self.max_history}: leave-one-out needs 3 "
                    f"interactions per user (train, validation, test); use 3 or more"
                ]
            )


def _rewrites(text: Any) -> bool:
    return bool(text.rewrite != "none")


@dataclass(frozen=True, kw_only=True)
class TextConfig(Section):
    template: Literal["flatten"] = _opt(
        "flatten",
        "how attributes become text: flatten = every attribute concatenated (the paper's best)",
    )
    style: Literal["sentence", "kv"] = _opt(
        "sentence",
        "sentence = LLMEmb's 'The <domain> item has the following attributes: "
        "title is ...; ...'; kv = 'title: ...; genres: ...'",
    )
    attributes: Optional[list[str]] = _opt(
        None,
        "attributes in order (null: the source's defaults, or every attribute for atomic files)",
    )
    max_chars: int = _opt(100, "characters kept per attribute value", ge=1)
    domain: Optional[str] = _opt(
        None, "noun in the sentence style (null: the source's, e.g. movie)"
    )
    noise: Literal["none", "drop", "shuffle"] = _opt(
        "none",
        "noisier metadata for text.noise_share of the items: drop = each attribute removed "
        "with probability 1/2 (one kept); shuffle = the chosen items' attributes permuted "
        "among them",
        key=lambda t: t.noise != "none",
    )
    noise_share: float = _opt(
        0.2, "share of items text.noise applies to", key=lambda t: t.noise != "none", ge=0.0, le=1.0
    )
    noise_seed: int = _opt(
        0, "seed of the items and attributes text.noise picks", key=lambda t: t.noise != "none"
    )
    rewrite: Literal["none", "keywords", "summary", "expansion"] = _opt(
        "none",
        "LLM rewriting of each item's text (generator settings: the generate section): "
        "none; keywords = a short keyword list; summary = one or two sentences; expansion = "
        "the attributes plus world knowledge about the item",
    )
    rewrite_join: Literal["replace", "append"] = _opt(
        "replace",
        "the rewritten text replaces the flattened text, or is appended to it",
        key=_rewrites,
    )
    rewrite_max_chars: int = _opt(
        400, "characters kept of a rewritten text (cut at a word)", key=_rewrites, ge=1
    )


@dataclass(frozen=True, kw_only=True)
class GenerateConfig(Section):
    model: str = _opt(
        "smollm2-135m",
        "instruction LLM that rewrites texts: a packaged alias, a "
        "local folder, a hub id, or `http` for an OpenAI-compatible endpoint",
    )
    max_new_tokens: int = _opt(64, "most tokens generated per item", ge=1)
    temperature: float = _opt(0.0, "sampling temperature (0 = greedy)", ge=0.0)
    seed: Optional[int] = _opt(
        None,
        "sampling seed with temperature > 0 (null: the run's train.seed)",
        key=lambda g: g.temperature > 0,
    )
    batch_size: int = _opt(16, "local: prompts per generate call (left padded)", key=False, ge=1)
    dtype: Literal["float32", "bfloat16", "float16"] = _opt("float32", "local: precision")
    device: str = _opt(
        "auto",
        "local: auto (CUDA when present, else CPU), cpu, cuda, cuda:N",
        key=False,
        check=device_problem,
    )
    base_url: Optional[str] = _opt(
        None,
        "http: the endpoint root, e.g. http://localhost:8000/v1 "
        "(vLLM, llama.cpp server) or https://api.openai.com/v1",
    )
    api_model: Optional[str] = _opt(None, "http: the model name sent, e.g. gpt-4o")
    api_key_env: str = _opt(
        "OPENAI_API_KEY",
        "http: environment variable holding the API key "
        "(read at run time; never logged or written to disk)",
        key=False,
    )
    concurrency: int = _opt(4, "http: requests in flight at once", key=False, ge=1)
    timeout: float = _opt(
        60.0, "http: seconds before a request is abandoned and retried", key=False, gt=0.0
    )
    retries: int = _opt(
        4,
        "retries per item after a timeout, 429, 5xx or malformed reply "
        "(backoff doubles from 1 s; a 429's Retry-After is honoured)",
        key=False,
        ge=0,
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.model == "http" and not (self.base_url and self.api_model):
            raise ConfigError(
                ["generate.model=http: needs generate.base_url and generate.api_model"]
            )


@dataclass(frozen=True, kw_only=True)
class TuneConfig(Section):
    stages: list[str] = choice(
        registry.OBJECTIVES,
        [],
        "LoRA stages before extraction, in order ([] = frozen LLM; "
        "[cpt, sft] = the paper's best); each stage's key chains the one before it",
        key=False,
    )
    lora_r: int = _opt(8, "LoRA rank", ge=1)
    lora_alpha: float = _opt(32, "LoRA scaling numerator (alpha / r scales the update)", gt=0.0)
    lora_dropout: float = _opt(0.1, "dropout on the LoRA input", ge=0.0, lt=1.0)
    target_modules: Optional[list[str]] = _opt(
        None,
        "module names LoRA wraps (null: every linear layer of the attention and MLP blocks, "
        "e.g. q/k/v/o/gate/up/down_proj in LLaMA, query/key/value/dense in BERT)",
    )
    steps: int = _opt(100, "optimiser steps per stage (ignored when epochs is set)", ge=1)
    epochs: Optional[float] = _opt(None, "passes over a stage's examples; sets the steps", gt=0.0)
    batch_size: int = _opt(8, "examples per micro-batch", ge=1)
    grad_accum: int = _opt(1, "micro-batches per optimiser step", ge=1)
    lr: float = _opt(
        5e-4,
        "AdamW learning rate (LLMEmb: 2e-4 over 4000 steps; higher "
        "suits the CPU-sized default budget)",
        gt=0.0,
    )
    schedule: Literal["constant", "linear", "cosine"] = _opt(
        "linear", "learning-rate schedule after warm-up"
    )
    warmup_steps: int = _opt(5, "linear warm-up steps", ge=0)
    max_tokens: int = _opt(128, "longest training sequence in tokens (longer ones are cut)", ge=8)
    dtype: Literal["auto", "float32", "bfloat16"] = _opt(
        "auto",
        "compute precision: bfloat16 autocast, or auto (bfloat16 on GPUs and CPUs with "
        "AVX512-BF16 or AMX, else float32)",
        key=RESOLVED,  # each stage's key holds the precision it resolves to
    )
    gradient_checkpointing: bool = _opt(
        False, "recompute activations in the backward pass (less memory, ~30% slower)", key=False
    )
    seed: Optional[int] = _opt(
        None,
        "seed for LoRA initialisation, example order, masks and dropout (null: the run's "
        "train.seed, so each seed of a study draws its own adapters; set one to share a draw)",
    )
    save_every: int = _opt(
        25,
        "checkpoint every this many steps (an interrupted stage resumes from the last one)",
        key=False,
        ge=1,
    )
    merge: bool = _opt(
        True,
        "merge the adapters into the weights before extraction (the "
        "embeddings are the same either way; merged is faster)",
        key=False,
    )
    adapter: Optional[str] = _opt(
        None,
        "a LoRA adapter folder saved by `recxplore tune` (e.g. "
        "tuned on another machine), applied before tune.stages; "
        "keys use its checksum",
        key=False,
    )
    device: str = _opt(
        "auto",
        "auto (CUDA when present, else CPU), cpu, cuda, cuda:N",
        key=False,
        check=device_problem,
    )
    threads: int = _opt(0, "torch CPU threads (0: torch's default)", key=False, ge=0)

    def __post_init__(self) -> None:
        super().__post_init__()
        problems = []
        if len(set(self.stages)) != len(self.stages):
            problems.append(f"tune.stages: each stage at most once; got {self.stages}")
        if "said" in self.stages[:-1]:
            problems.append(
                f"tune.stages: said learns the item vectors themselves, so it comes last; got "
                f"{self.stages}"
            )
        if self.target_modules is not None and not self.target_modules:
            problems.append(
                "tune.target_modules: an empty list wraps nothing; use null for the "
                "default projections"
            )
        if problems:
            raise ConfigError(problems)


@dataclass(frozen=True, kw_only=True)
class ExtractConfig(Section):
    model: str = _opt(
        "smollm2-135m",
        "extractor: a packaged alias (smollm2-135m, minilm-l6, "
        "tfidf-svd), a Hugging Face hub id, a local model folder or a .gguf file",
    )
    pooling: str = choice(registry.POOLINGS, "mean", "token aggregation over non-pad tokens")
    pool_span: Literal["all", "item"] = _opt(
        "all",
        "tokens pooled: all, or the item's own (without the leading and trailing tokens every "
        "item's text shares, such as a template's prefix, whose states a causal model computes "
        "alike for every item)",
        key=lambda e: e.pool_span != "all",
    )
    layer: int = _opt(
        -1,
        "hidden layer pooled: -1 = the last (after the final norm), k = the "
        "output of block k (1-based), 0 = the input embeddings",
    )
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = _opt(
        "auto",
        "compute precision (auto: bfloat16 on GPUs and CPUs with AVX512-BF16 or AMX, else "
        "float32; float16 only on GPU); stored embeddings are float32",
        key=RESOLVED,  # the store key holds the precision it resolves to
    )
    device: str = _opt(
        "auto",
        "auto (CUDA when present, else CPU), cpu, cuda, cuda:N",
        key=False,
        check=device_problem,
    )
    batch_size: int = _opt(32, "texts per forward pass (texts are sorted by length)", ge=1)
    max_tokens: Optional[int] = _opt(
        None, "longest tokenised text allowed (null: the model's context, at most 512)", ge=1
    )
    truncate: bool = _opt(False, "cut texts longer than max_tokens instead of refusing them")
    padding_side: Literal["right", "left"] = _opt("right", "where batches are padded")
    static_dim: int = _opt(256, "tfidf-svd: output dimension of the truncated SVD", ge=2)
    shard_size: int = _opt(
        1024, "rows per store shard (item-index ranges; the unit of resuming)", ge=1
    )
    offline: bool = _opt(
        True, "never download: hub ids must already be in the local HF cache", key=False
    )
    trust_remote_code: bool = _opt(False, "allow a hub model's own Python code to run", key=False)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.layer < -1:
            raise ConfigError([f"extract.layer: must be -1 (last) or >= 0; got {self.layer}"])


@dataclass(frozen=True, kw_only=True)
class AdaptConfig(Section):
    fusion: str = choice(
        registry.FUSIONS,
        "id",
        "how item vectors are made from IDs and "
        "adapted LLM features (id = ID embeddings only: no text, no LLM)",
    )
    adapter: str = choice(
        registry.ADAPTERS, "moe", "features -> hidden size, trained with the backbone"
    )
    pca: Optional[float] = _opt(
        256,
        "PCA before the adapter: >= 1 keeps that many components (capped at the feature "
        "size), in (0, 1) keeps that share of variance, null = no PCA",
    )
    pca_whiten: bool = _opt(False, "scale PCA components to unit variance")
    pca_fit: Literal["all", "train"] = _opt(
        "all", "fit PCA on all items (the paper's practice) or only on items in training sequences"
    )
    pca_sample: Optional[int] = _opt(
        None,
        "fit PCA on at most this many of the adapt.pca_fit items, drawn at random (seed 0), so "
        "a million-item catalogue fits on a bounded sample; null: on all of them",
        key=lambda a: a.pca_sample is not None,
        ge=2,
    )
    center: bool = _opt(
        False,
        "subtract the items' mean feature before the adapter (PCA centres already; this "
        "centres without PCA); fitted on the adapt.pca_fit items",
        key=lambda a: a.center,
    )
    gain: Literal["fixed", "learned"] = _opt(
        "fixed",
        "the adapter output's scale: fixed at the value that starts item vectors at the ID "
        "table's scale, or learned from that value (one trained scalar)",
        key=lambda a: a.gain != "fixed",
    )
    adapter_dropout: float = _opt(0.2, "dropout on the features before the adapter", ge=0.0, lt=1.0)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.pca is not None and (self.pca <= 0 or (self.pca > 1 and self.pca != int(self.pca))):
            raise ConfigError(
                [
                    f"adapt.pca: must be a whole number >= 1, a share in (0, 1), or "
                    f"null; got {self.pca}"
                ]
            )


@dataclass(frozen=True, kw_only=True)
class ModelConfig(Section):
    backbone: str = choice(registry.BACKBONES, "sasrec", "sequential model")
    hidden: int = _opt(64, "hidden size of item vectors and the backbone", ge=1)
    layers: int = _opt(2, "transformer blocks (sasrec, bert4rec) or GRU layers (gru4rec)", ge=1)
    heads: int = _opt(2, "attention heads (sasrec, bert4rec); must divide hidden", ge=1)
    dropout: float = _opt(
        0.2, "dropout probability in the backbone and on item vectors", ge=0.0, lt=1.0
    )
    attention_dropout: Optional[float] = _opt(
        None,
        "sasrec, bert4rec: dropout on the attention weights (null: model.dropout); 0 lets CPU "
        "attention use its fused kernel",
        key=lambda m: m.attention_dropout is not None,
        ge=0.0,
        lt=1.0,
    )
    max_len: int = _opt(50, "most recent items the model sees per sequence", ge=2)
    mask_prob: float = _opt(0.2, "bert4rec: share of positions masked in training", gt=0.0, lt=1.0)

    def __post_init__(self) -> None:
        super().__post_init__()
        attends = (
            self.backbone in registry.BACKBONES
            and "heads" in registry.BACKBONES.entry(self.backbone).requires
        )
        if attends and self.hidden % self.heads:
            raise ConfigError(
                [
                    f"model.heads: must divide model.hidden={self.hidden} for "
                    f"{self.backbone}; got {self.heads}"
                ]
            )


@dataclass(frozen=True, kw_only=True)
class TrainConfig(Section):
    loss: str = choice(registry.LOSSES, "ce", "next-item loss")
    num_negatives: Optional[int] = _opt(
        None,
        "negatives per position for bce (default 1) or per batch for sampled (default 256)",
        ge=1,
    )
    lr: float = _opt(4e-3, "AdamW learning rate (chosen on validation: docs/evaluation.md)", gt=0.0)
    warmup_steps: int = _opt(
        0,
        "linear learning-rate warm-up over this many optimiser steps",
        key=lambda t: t.warmup_steps != 0,
        ge=0,
    )
    weight_decay: float = _opt(0.0, "AdamW weight decay", ge=0.0)
    batch_size: int = _opt(128, "sequences (windows of up to model.max_len targets) per step", ge=1)
    epochs: int = _opt(200, "maximum training epochs", ge=1)
    patience: int = _opt(20, "stop after this many epochs without a better validation metric", ge=1)
    patience_unit: Literal["targets", "epochs"] = _opt(
        "targets",
        "targets: a masked objective (bert4rec), which trains on model.mask_prob of the "
        "positions an epoch, waits patience / mask_prob epochs, so that every backbone stops "
        "after as many training targets without progress; epochs: patience epochs for all",
        key=lambda t: t.patience_unit != "targets",
    )
    min_delta: float = _opt(
        0.0,
        "an epoch counts as better only if it beats the best validation metric by this much",
        key=lambda t: t.min_delta != 0.0,
        ge=0.0,
    )
    batching: Literal["random", "bucketed"] = _opt(
        "bucketed",
        "random: shuffled windows; bucketed: shuffled batches of windows of similar length, "
        "so a batch pads less",
        key=lambda t: t.batching != "random",
    )
    precision: Literal["auto", "float32", "bfloat16"] = _opt(
        "auto",
        "compute precision of the backbone and loss: bfloat16 autocast, or auto (bfloat16 on "
        "GPUs and CPUs with AVX512-BF16 or AMX, else float32); scores stay float32; run keys "
        "name bfloat16",
        key=RESOLVED,  # the run identity holds the precision it resolves to
    )
    select_metric: str = _opt(
        "NDCG@10", "validation metric (full ranking) used for model selection and early stopping"
    )
    seed: int = _opt(42, "seed for initialisation, shuffling, negatives and dropout")
    device: str = _opt(
        "auto",
        "auto (CUDA when present, else CPU), cpu, cuda, cuda:N; run keys "
        "name a device other than the CPU",
        key=False,
        check=device_problem,
    )
    threads: int = _opt(0, "torch CPU threads (0: torch's default)", key=False, ge=0)
    grad_clip: Optional[float] = _opt(None, "clip the gradient norm to this value", gt=0.0)
    sparse_items: bool = _opt(
        False,
        "ID-only: the item table takes sparse gradients and a lazy Adam (torch's SparseAdam: a "
        "row no batch item touches keeps its value and moments), so a step costs the batch, not "
        "the catalogue; needs train.loss bce, sampled or in_batch",
        key=lambda t: t.sparse_items,
    )


@dataclass(frozen=True, kw_only=True)
class EvalConfig(Section):
    ks: list[int] = _opt([5, 10, 20], "cut-offs K for HR@K, NDCG@K and MRR@K")
    sampled_negatives: int = _opt(
        100, "uniform negatives per user for sampled ranking (excluding the user's items)", ge=1
    )
    mask_history: bool = _opt(
        True,
        "full ranking: exclude items already in the input sequence "
        "(never the target), as RecBole does",
    )
    batch_size: int = _opt(512, "users scored per evaluation batch", key=False, ge=1)
    item_chunk: int = _opt(
        65536,
        "full ranking of a catalogue larger than this scores it in chunks of this many items, "
        "so memory is users per batch x chunk, never users x items (the same ranks, but for "
        "the float rounding of exact ties)",
        key=False,
        ge=1,
    )
    # Groups of instances (recxplore.eval.groups): computed from ranks, so never in a key.
    head_share: float = _opt(
        0.2,
        "groups: the most popular share of items (by training interactions) are head, the "
        "rest tail",
        key=False,
        gt=0.0,
        lt=1.0,
    )
    tail_below: Optional[int] = _opt(
        None,
        "groups: a target is tail when its training interactions are below this (LLM-ESR's "
        "ts_item: 4 on Beauty and Fashion, 13 on Yelp); null: by eval.head_share",
        key=False,
        ge=1,
    )
    short_share: float = _opt(
        0.2,
        "groups: the users with the shortest histories, this share of them, are short",
        key=False,
        gt=0.0,
        lt=1.0,
    )
    short_below: Optional[int] = _opt(
        None,
        "groups: a user is short when its history has fewer items (LLM-ESR's ts_user: 9 on "
        "Beauty, 3 on Fashion, 12 on Yelp); null: by eval.short_share",
        key=False,
        ge=1,
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        bad = [k for k in self.ks if not isinstance(k, int) or k < 1]
        if not self.ks or bad:
            raise ConfigError(
                [f"eval.ks: must be a non-empty list of integers >= 1; got {self.ks}"]
            )


@dataclass(frozen=True, kw_only=True)
class PathsConfig(Section):
    home: Optional[str] = _opt(
        None, "root of caches and runs (default: $RECXPLORE_HOME or ~/.cache/recxplore)", key=False
    )
    runs_dir: Optional[str] = _opt(None, "where run folders go (default: <home>/runs)", key=False)
