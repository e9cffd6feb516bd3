"""The probe, kept: concurrent processes, hostile checkpoints, operating-system errors, tampered
cached artifacts, NaN, bad device names, bad atomic files and failures under --json."""

from __future__ import annotations

import json
import logging
import multiprocessing
import pickle
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import save_file
from tests.conftest import write_tiny_atomic

from recxplore import config
from recxplore.cache import sha256_file
from recxplore.cli import main
from recxplore.errors import ArtifactError, ConfigError, DataError, RecxploreError
from recxplore.pipeline import features, run_folder, train

# -- 1. two processes on a fresh home ---------------------------------------------------------


def _train_in_a_process(overrides: list[str]) -> dict:
    return train(config.load(None, overrides), progress=False)["metrics"]


def _finished_and_partial(home: Path) -> tuple[dict[str, int], list[Path]]:
    finished: dict[str, int] = {}
    for manifest in home.rglob("manifest.json"):
        kind = manifest.parent.parent.name
        finished[kind] = finished.get(kind, 0) + 1
    return finished, [p for p in home.rglob("*.partial") if p.is_dir()]


def _race(overrides: list[str]) -> list[dict]:
    with multiprocessing.get_context("spawn").Pool(2) as pool:
        return pool.map(_train_in_a_process, [overrides, overrides])


@pytest.mark.slow
def test_two_processes_build_dataset_store_pca_codes_id_table_and_run_once(tmp_path):
    raw = write_tiny_atomic(tmp_path / "raw", name="big", users=80, items=300, seed=3)
    home = tmp_path / "home"
    overrides = [
        "data.name=atomic:big", f"data.data_dir={raw}", "data.filter=none",
        "extract.model=tfidf-svd", "extract.static_dim=32", "adapt.pca=16",
        "adapt.pq_subvectors=4", "adapt.adapter=pq", "adapt.fusion=align", "model.hidden=16",
        "model.layers=1", "model.max_len=8", "train.epochs=1", "train.batch_size=64",
        "eval.sampled_negatives=20", f"paths.home={home}",
    ]  # fmt: skip
    a, b = _race(overrides)
    assert a == b
    finished, partial = _finished_and_partial(home)
    assert finished == {"dataset": 1, "embeddings": 1, "reduced": 1, "pq-codes": 1, "runs": 2}
    assert partial == []  # the align run and the ID-only run it pretrains, each once


@pytest.mark.slow
def test_two_processes_build_rewrites_tuning_stage_and_neural_store_once(tmp_path, tiny_llama):
    raw = write_tiny_atomic(tmp_path / "raw")
    home = tmp_path / "home"
    overrides = [
        "data.name=atomic:tiny", f"data.data_dir={raw}", "data.filter=none",
        f"extract.model={tiny_llama}", "extract.batch_size=8", "text.rewrite=keywords",
        "text.rewrite_join=append", f"generate.model={tiny_llama}", "generate.max_new_tokens=6",
        "generate.temperature=1.0", "generate.seed=0",
        "tune.stages=[cpt]", "tune.steps=2", "tune.batch_size=4", "adapt.pca=8",
        "adapt.adapter=linear", "adapt.fusion=replace", "model.hidden=16", "model.layers=1",
        "model.max_len=8", "train.epochs=1", "train.batch_size=8",
        "eval.sampled_negatives=10", f"paths.home={home}",
    ]  # fmt: skip
    # Seeded sampling: greedy decoding of a random model hangs on one argmax of near-flat logits,
    # which the two processes' float sums can tip onto a token that cleans to an empty reply.
    a, b = _race(overrides)
    assert a == b
    finished, partial = _finished_and_partial(home)
    assert finished == {"dataset": 1, "tune": 1, "embeddings": 1, "reduced": 1, "runs": 1}
    assert partial == []
    rewrites = list((home / "cache" / "rewrites").glob("*.jsonl"))
    assert len(rewrites) == 1
    lines = rewrites[0].read_text().splitlines()
    assert len(lines) == len({json.loads(line)["input_sha256"] for line in lines})  # once each


# -- 2. a checkpoint that carries code ---------------------------------------------------------


class _Payload:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_a_checkpoint_carrying_a_pickled_object_is_refused(tiny_cfg, tmp_path):
    cfg = tiny_cfg.replace(**{"train.epochs": 3})
    folder = run_folder(cfg, progress=False)
    folder.partial.mkdir(parents=True)
    marker = tmp_path / "code-ran"
    with open(folder.partial / "checkpoint.pt", "wb") as f:
        pickle.dump({"model": _Payload(marker)}, f)
    with pytest.raises(ArtifactError, match="not a checkpoint recxplore can load safely"):
        train(cfg, progress=False)
    assert not marker.exists()


# -- 3. operating-system errors ----------------------------------------------------------------


def test_a_finished_run_is_read_without_writing_anything(tiny_cfg):
    """What makes a read-only home serve its finished runs (root ignores chmod, so the test
    checks that nothing is written)."""
    results = train(tiny_cfg, progress=False)
    home = Path(tiny_cfg.paths.home)
    before = sorted((p, p.stat().st_mtime_ns) for p in home.rglob("*"))
    assert train(tiny_cfg, progress=False)["metrics"] == results["metrics"]
    assert sorted((p, p.stat().st_mtime_ns) for p in home.rglob("*")) == before


def test_a_home_that_is_a_file_is_a_clear_error(tiny_dir, tmp_path, capsys):
    home = tmp_path / "home-file"
    home.write_text("not a folder")
    code = main(["prepare", "atomic:tiny", "--data-dir", str(tiny_dir), "data.filter=none",
                 f"paths.home={home}", "--json"])  # fmt: skip
    captured = capsys.readouterr()
    assert code == 2 and "Traceback" not in captured.err
    error = json.loads(captured.out)
    assert error["kind"] == "NotADirectoryError"
    assert "a file stands where a folder is needed" in error["error"]


def test_permission_and_full_disk_messages_name_the_path():
    import errno

    from recxplore.cli import os_error_message

    denied = os_error_message(PermissionError(errno.EACCES, "Permission denied", "/r/o/runs"))
    assert denied.startswith("/r/o/runs: permission denied") and "paths.home" in denied
    full = os_error_message(OSError(errno.ENOSPC, "No space left on device", "/d/x.tmp"))
    assert full.startswith("/d/x.tmp: no space left on the device")


def test_a_full_disk_while_checkpointing_is_an_error_naming_the_file(tiny_cfg, monkeypatch):
    import recxplore.runtime as runtime

    def full(obj, path):
        Path(path).write_bytes(b"half")
        raise RuntimeError("[enforce fail at inline_container.cc:778] . unexpected pos 64 vs 0")

    monkeypatch.setattr(runtime.torch, "save", full)
    with pytest.raises(ArtifactError, match=r"best.pt: could not be written .* disk may be full"):
        train(tiny_cfg, progress=False)
    assert not list(Path(tiny_cfg.paths.home).rglob("*.tmp"))


# -- 4. tampered cached artifacts --------------------------------------------------------------


@pytest.fixture
def feature_cfg(tmp_path, home):
    raw = write_tiny_atomic(tmp_path / "big", name="big", users=80, items=300, seed=3)
    return config.load(None, [
        "data.name=atomic:big", f"data.data_dir={raw}", "data.filter=none",
        "extract.model=tfidf-svd", "extract.static_dim=32", "adapt.pca=16",
        "adapt.pq_subvectors=4", "adapt.adapter=pq", "adapt.fusion=replace", "model.hidden=16",
        "model.layers=1", "model.max_len=8", "train.epochs=1", "train.batch_size=64",
        "eval.sampled_negatives=20", f"paths.home={home}"])  # fmt: skip


def _flip_a_byte(path: Path, at: int = -8) -> None:
    data = bytearray(path.read_bytes())
    data[at] ^= 0x01
    path.write_bytes(bytes(data))


def _only(home: Path, pattern: str) -> Path:
    (found,) = [p for p in home.rglob(pattern) if ".partial" not in str(p)]
    return found


@pytest.mark.parametrize(
    "pattern",
    ["dataset/*/data.npz", "reduced/*/features.safetensors", "pq-codes/*/codes.safetensors",
     "embeddings/*/shard-00000.safetensors"],
    ids=["dataset", "reduced", "codes", "store-shard-with-pca-cached"],
)  # fmt: skip
def test_a_tampered_cached_artifact_is_refused(feature_cfg, pattern):
    train(feature_cfg, progress=False)
    _flip_a_byte(_only(Path(feature_cfg.paths.home), pattern))
    with pytest.raises(ArtifactError, match="altered"):
        train(feature_cfg.replace(**{"train.lr": 0.002}), progress=False)


def test_a_tampered_finished_run_and_tuning_stage_are_refused(tiny_cfg, tiny_llama):
    results = train(tiny_cfg, progress=False)
    _flip_a_byte(Path(results["run_dir"]) / "results.json", at=3)
    with pytest.raises(ArtifactError, match="results.json: missing or altered"):
        train(tiny_cfg, progress=False)
    from recxplore.pipeline import tune

    cfg = tiny_cfg.replace(**{"extract.model": str(tiny_llama), "tune.stages": ["cpt"],
                              "tune.steps": 2, "tune.batch_size": 4})  # fmt: skip
    (adapter,) = [f / "adapter_model.safetensors" for f in tune(cfg, progress=False).folders]
    _flip_a_byte(adapter)
    with pytest.raises(ArtifactError, match="adapter_model.safetensors: missing or altered"):
        tune(cfg, progress=False)


def test_nan_features_and_a_corrupt_header_are_refused(feature_cfg):
    train(feature_cfg, progress=False)
    path = _only(Path(feature_cfg.paths.home), "reduced/*/features.safetensors")
    manifest_path = path.parent / "manifest.json"
    features_now = np.zeros((301, 16), dtype=np.float32)
    features_now[5, 3] = np.nan
    save_file({"features": features_now}, str(path))
    manifest = json.loads(manifest_path.read_text())
    manifest["files"]["features.safetensors"] = sha256_file(path)  # as if written so
    manifest_path.write_text(json.dumps(manifest))
    with pytest.raises(ArtifactError, match="holds NaN or Inf values"):
        train(feature_cfg.replace(**{"train.lr": 0.003}), progress=False)
    path.write_bytes(b"\xff" * 16 + path.read_bytes()[16:])
    manifest["files"]["features.safetensors"] = sha256_file(path)
    manifest_path.write_text(json.dumps(manifest))
    with pytest.raises(ArtifactError, match="features.safetensors: unreadable"):
        train(feature_cfg.replace(**{"train.lr": 0.004}), progress=False)


def test_a_loss_that_turns_nan_stops_the_run(tiny_cfg, monkeypatch):
    import dataclasses

    from recxplore.registry import LOSSES
    from recxplore.train.loop import TrainingError

    def nan_loss(h, *rest):
        return h.sum() * float("nan")

    monkeypatch.setitem(
        LOSSES._entries, "ce", dataclasses.replace(LOSSES.entry("ce"), build=nan_loss)
    )
    with pytest.raises(TrainingError, match="training loss became nan at epoch 1, batch 1"):
        train(tiny_cfg, progress=False)


# -- 5. device names ---------------------------------------------------------------------------


@pytest.mark.parametrize("key", ["train.device", "extract.device", "tune.device",
                                 "generate.device"])  # fmt: skip
def test_unknown_device_names_are_config_errors(key):
    with pytest.raises(ConfigError, match=rf"{key}: must be auto, cpu, cuda, cuda:N or mps; "
                                          rf"got 'tpu'"):  # fmt: skip
        config.load(None, [f"{key}=tpu"])
    config.load(None, [f"{key}=cuda:1"])  # named, not checked against this machine


# -- 6. atomic files ---------------------------------------------------------------------------


def _atomic(folder: Path, inter: list[str], item: list[str] | None = None) -> str:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "bad.inter").write_text("\n".join(inter) + "\n", encoding="utf-8")
    if item is not None:
        (folder / "bad.item").write_text("\n".join(item) + "\n", encoding="utf-8")
    return str(folder)


def _prepare(data_dir: str, home: Path):
    from recxplore.config import DataConfig
    from recxplore.data.prepare import prepare

    return prepare(DataConfig(name="atomic:bad", data_dir=data_dir, filter="none"), home)


ROWS = [f"u{u}\ti{i}\t5\t{10 * u + i}" for u in range(3) for i in range(4)]


def test_a_header_naming_a_field_twice_is_refused(tmp_path, home):
    folder = _atomic(tmp_path, ["user_id:token\titem_id:token\titem_id:token\ttimestamp:float"]
                     + ROWS)  # fmt: skip
    with pytest.raises(DataError, match=r"bad.inter:1: header names field 'item_id' twice"):
        _prepare(folder, home)


def test_a_nan_timestamp_is_refused(tmp_path, home):
    rows = [*ROWS[:-1], "u2\ti3\t5\tnan"]
    folder = _atomic(tmp_path, ["user_id:token\titem_id:token\trating:float\ttimestamp:float"]
                     + rows)  # fmt: skip
    with pytest.raises(DataError, match=r"bad.inter:13: timestamp nan is not a finite number"):
        _prepare(folder, home)


def test_a_byte_order_mark_is_accepted(tmp_path, home):
    folder = _atomic(tmp_path, ["\ufeffuser_id:token\titem_id:token\trating:float\t"
                                "timestamp:float"] + ROWS)  # fmt: skip
    ds, _ = _prepare(folder, home)
    assert ds.n_users == 3 and ds.n_items == 4


def test_an_item_file_matching_no_interaction_is_reported(tmp_path, home, caplog):
    folder = _atomic(tmp_path, ["user_id:token\titem_id:token\trating:float\ttimestamp:float"]
                     + ROWS, ["item_id:token\ttitle:token_seq", "x1\tNobody's item"])  # fmt: skip
    with caplog.at_level(logging.WARNING):
        _prepare(folder, home)
    assert "none of its 1 item ids occurs in" in caplog.text
    cfg = config.load(None, ["data.name=atomic:bad", f"data.data_dir={folder}",
                             "data.filter=none", "extract.model=tfidf-svd", f"paths.home={home}",
                             "adapt.fusion=replace"])  # fmt: skip
    with pytest.raises(RecxploreError, match="no item has any attribute"):
        features(cfg, progress=False)


# -- 7. small ones -----------------------------------------------------------------------------


def test_a_failure_under_json_is_one_json_object(capsys):
    assert main(["train", "adapt.adapter=lstm", "--json"]) == 2
    out = capsys.readouterr().out
    error = json.loads(out)
    assert error["kind"] == "ConfigError" and "unknown adapter" in error["error"]


def test_a_negative_limit_is_an_error(tiny_dir, home, capsys):
    code = main(["text", "atomic:tiny", "--data-dir", str(tiny_dir), "--limit", "-1",
                 "data.filter=none"])  # fmt: skip
    assert code == 2 and "--limit: must be >= 1; got -1" in capsys.readouterr().err


def test_extract_reports_throughput_with_and_without_loading(tiny_cfg):
    summary = features(
        tiny_cfg.replace(**{"extract.model": "tfidf-svd", "extract.static_dim": 8}), progress=False
    )[3]
    assert summary.items_per_second and summary.items_per_second_with_loading
    assert summary.items_per_second >= summary.items_per_second_with_loading
