"""Shared fixtures: a tiny RecBole-atomic dataset written by the tests, and an isolated home."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from recxplore import config


def write_tiny_atomic(folder: Path, name: str = "tiny", users: int = 30, items: int = 25,
                      seed: int = 0) -> Path:
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
    return config.load(None, [
        "data.name=atomic:tiny", f"data.data_dir={tiny_dir}", "data.filter=none",
        "model.hidden=16", "model.layers=1", "model.heads=2", "model.max_len=8",
        "train.epochs=2", "train.batch_size=8", "eval.sampled_negatives=10",
        f"paths.home={home}"])
