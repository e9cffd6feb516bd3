"""Shared fixtures: a tiny RecBole-atomic dataset written by the tests, and an isolated home."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from recxplore import config


def write_tiny_atomic(
    folder: Path, name: str = "tiny", users: int = 30, items: int = 25, seed: int = 0
) -> Path:
    """Users with 5-14 interactions each; every item is popular enough to pass 3-core filters."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    lines = ["user_id:token\titem_id:token\trating:float\ttimestamp:float"]
    for u in range(users):
        n = int(rng.integers(5, 15))
        chosen = rng.choice(np.arange(1, items + 1), size=n, replace=False)
        for t, item in enumerate(chosen):
            lines.append(f"u{u}\ti{item}\t{int(rng.integers(1, 6))}\t{1000 + 10 * t}")
    (folder / f"{name}.inter").write_text("\n".join(lines) + "\n", encoding="utf-8")
    item_lines = ["item_id:token\ttitle:token_seq\tgenres:token_seq"]
    item_lines += [f"i{i}\tItem number {i}\tgenre{i % 3} genre{i % 5}" for i in range(1, items + 1)]
    (folder / f"{name}.item").write_text("\n".join(item_lines) + "\n", encoding="utf-8")
    return folder


def assert_metrics_match_ranks(results: dict) -> None:
    """The test metrics a run reports are the ones its ``test_ranks.csv`` gives: a smoke test's
    real check that evaluation, ranks and results agree."""
    import csv

    from recxplore.eval.metrics import summarise

    with open(Path(results["run_dir"]) / "test_ranks.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert rows, "no test users"
    for protocol in ("full", "sampled"):
        ranks = [int(r[f"rank_{protocol}"]) for r in rows]
        again = summarise(ranks, [5, 10])
        reported = results["metrics"]["test"][protocol]
        for metric, value in again.items():
            assert reported[metric] == pytest.approx(value, abs=1e-6), (protocol, metric)


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    root = tmp_path / "home"
    monkeypatch.setenv("RECXPLORE_HOME", str(root))
    return root


@pytest.fixture
def tiny_dir(tmp_path) -> Path:
    return write_tiny_atomic(tmp_path / "raw")


@pytest.fixture
def tiny_cfg(tiny_dir, home) -> config.Config:
    """A config that trains in well under a second per epoch on the tiny dataset."""
    return config.load(
        None,
        [
            "data.name=atomic:tiny",
            f"data.data_dir={tiny_dir}",
            "data.filter=none",
            "model.hidden=16",
            "model.layers=1",
            "model.heads=2",
            "model.max_len=8",
            "train.epochs=2",
            "train.batch_size=8",
            "eval.sampled_negatives=10",
            # float32 whatever the CPU: tests behave alike on every machine (bfloat16 has its
            # own tests)
            "train.precision=float32",
            "tune.dtype=float32",
            "extract.dtype=float32",
            f"paths.home={home}",
        ],
    )


def build_tiny_llama(folder: Path, corpus: list[str], seed: int = 0, layers: int = 2) -> Path:
    """A randomly initialised LLaMA with a word-level tokenizer, saved like a hub model."""
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaModel, PreTrainedTokenizerFast

    tok = Tokenizer(models.WordLevel(unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.train_from_iterator(
        corpus, trainers.WordLevelTrainer(special_tokens=["[PAD]", "[UNK]", "[BOS]", "[EOS]"])
    )
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        unk_token="[UNK]",
        pad_token="[PAD]",
        bos_token="[BOS]",
        eos_token="[EOS]",
    )
    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=tok.get_vocab_size(),
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=layers,
        num_attention_heads=2,
        num_key_value_heads=2,
        max_position_embeddings=128,
        pad_token_id=0,
        bos_token_id=2,
        eos_token_id=3,
    )
    LlamaModel(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def build_tiny_bert(folder: Path, corpus: list[str], seed: int = 0) -> Path:
    """A randomly initialised BERT encoder (no MLM head, like sentence-transformers models)."""
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers, processors, trainers
    from transformers import BertConfig, BertModel, PreTrainedTokenizerFast

    tok = Tokenizer(models.WordLevel(unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.train_from_iterator(
        corpus,
        trainers.WordLevelTrainer(special_tokens=["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]),
    )
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", special_tokens=[("[CLS]", 2), ("[SEP]", 3)]
    )
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        unk_token="[UNK]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
    )
    torch.manual_seed(seed)
    config = BertConfig(
        vocab_size=tok.get_vocab_size(),
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        max_position_embeddings=128,
        pad_token_id=0,
    )
    BertModel(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


TINY_CORPUS = [
    "The catalogue item has the following attributes: title is Item number genres is",
    "title: genres: This item: means in one word: " + " ".join(f"genre{i}" for i in range(5)),
    " ".join(str(i) for i in range(40)),
]


@pytest.fixture(scope="session")
def tiny_llama(tmp_path_factory) -> Path:
    return build_tiny_llama(tmp_path_factory.mktemp("tiny-llama"), TINY_CORPUS)


@pytest.fixture(scope="session")
def tiny_bert(tmp_path_factory) -> Path:
    return build_tiny_bert(tmp_path_factory.mktemp("tiny-bert"), TINY_CORPUS)


@pytest.fixture
def make_atomic():
    """The atomic-dataset writer, for tests that need a second dataset."""
    return write_tiny_atomic
