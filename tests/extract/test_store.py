"""The embedding store: resume after an interruption, validation on read, bad input."""

import json
import os
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import load_file

from recxplore import config
from recxplore.config import load
from recxplore.data.prepare import prepare
from recxplore.errors import ArtifactError
from recxplore.extract import stage
from recxplore.extract.stage import ExtractError
from recxplore.extract.store import open_store
from recxplore.llm.models import ModelError
from recxplore.pipeline import features


def extract_features(cfg, progress=False):
    """The store's folder and summary, as ``recxplore extract`` makes them."""
    store = features(cfg, progress=progress)[3]
    return store.path, store.to_dict()


def cfg_for(tiny_cfg, model, **extra):
    overrides = {
        "extract.model": str(model),
        "extract.shard_size": 8,
        "extract.batch_size": 3,
        "text.style": "kv",
        **extra,
    }
    return tiny_cfg.replace(**overrides)


def test_store_format_and_alignment(tiny_cfg, tiny_llama):
    cfg = cfg_for(tiny_cfg, tiny_llama)
    path, summary = extract_features(cfg, progress=False)
    ds, _ = prepare(cfg.data, Path(cfg.paths.home))
    manifest = json.loads((path / "manifest.json").read_text())
    assert manifest["rows"] == summary["rows"] == ds.n_items + 1 and summary["dim"] == 16
    assert manifest["item_fingerprint"] == ds.item_fingerprint
    assert manifest["pooling"] == "mean" and manifest["text"]["style"] == "kv"
    first = load_file(str(path / "shard-00000.safetensors"))
    assert first["index"].tolist() == list(range(8)) and first["embeddings"].shape == (8, 16)
    assert not first["embeddings"][0].any()  # padding row
    store = open_store(path, ds, expect={"pooling": "mean"})
    assert store.embeddings.shape == (ds.n_items + 1, 16)
    again, cached = extract_features(cfg, progress=False)
    assert again == path and cached["cached"]


def test_interrupted_extraction_resumes_byte_identical(tiny_cfg, tiny_llama, tmp_path, monkeypatch):
    reference, _ = extract_features(
        cfg_for(tiny_cfg, tiny_llama).replace(**{"paths.home": str(tmp_path / "ref")}),
        progress=False,
    )
    cfg = cfg_for(tiny_cfg, tiny_llama)
    real, calls = stage.write_shard, {"n": 0}

    def dies_after_one_shard(*args):
        if calls["n"] == 1:
            raise KeyboardInterrupt
        calls["n"] += 1
        real(*args)

    monkeypatch.setattr(stage, "write_shard", dies_after_one_shard)
    with pytest.raises(KeyboardInterrupt):
        extract_features(cfg, progress=False)
    partial = next(Path(cfg.paths.home, "cache", "embeddings").glob("*.partial"))
    assert [p.name for p in partial.iterdir()] == ["shard-00000.safetensors"]
    monkeypatch.setattr(stage, "write_shard", real)
    resumed, _ = extract_features(cfg, progress=False)
    names = sorted(p.name for p in reference.glob("shard-*"))
    assert names == sorted(p.name for p in resumed.glob("shard-*")) and len(names) > 2
    for name in names:
        assert (reference / name).read_bytes() == (resumed / name).read_bytes()


def test_mismatched_or_corrupt_store_is_refused(tiny_cfg, tiny_llama, tmp_path, make_atomic):
    path, _ = extract_features(cfg_for(tiny_cfg, tiny_llama), progress=False)
    other_dir = make_atomic(tmp_path / "other", name="tiny", items=30, seed=5)
    other = load(None, ["data.name=atomic:tiny", f"data.data_dir={other_dir}", "data.filter=none"])
    ds_other, _ = prepare(other.data, tmp_path / "h2")
    with pytest.raises(ArtifactError, match=r"has \d+ rows but dataset atomic:tiny needs"):
        open_store(path, ds_other)
    with pytest.raises(ArtifactError, match=r"built with pooling='mean', expected 'last'"):
        open_store(path, expect={"pooling": "last"})
    from safetensors.numpy import save_file

    shard = path / "shard-00001.safetensors"
    tensors = load_file(str(shard))
    tensors["embeddings"][2, 3] = np.nan
    save_file(tensors, str(shard))
    with pytest.raises(ArtifactError, match=r"shard-00001.safetensors: missing or altered"):
        open_store(path)
    manifest = json.loads((path / "manifest.json").read_text())
    from recxplore.cache import sha256_file

    manifest["shards"][1]["sha256"] = sha256_file(shard)
    (path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(
        ArtifactError,
        match=r"1 row\(s\) hold NaN or Inf \(first item indices "
        r"\[10\]\)",
    ):
        open_store(path)


def test_fingerprint_mismatch_with_same_row_count(tiny_cfg, tiny_llama):
    path, _ = extract_features(cfg_for(tiny_cfg, tiny_llama), progress=False)
    ds, _ = prepare(tiny_cfg.data, Path(tiny_cfg.paths.home))
    ds.item_ids = list(reversed(ds.item_ids))
    ds.__post_init__()
    with pytest.raises(ArtifactError, match="item fingerprint .* does not match dataset"):
        open_store(path, ds)


def test_static_extractor(tiny_cfg):
    path, summary = extract_features(
        tiny_cfg.replace(**{"extract.model": "tfidf-svd", "extract.static_dim": 8}), progress=False
    )
    store = open_store(path)
    assert store.dim == 8 and np.abs(store.embeddings[1:]).sum() > 0


def test_bad_input_errors(tiny_cfg, tiny_llama, tmp_path):
    with pytest.raises(
        ModelError,
        match=r"extract.model='no-such-model': not a packaged alias "
        r"\(minilm-l6, smollm2-135m, tfidf-svd\)",
    ):
        extract_features(tiny_cfg.replace(**{"extract.model": "no-such-model"}), progress=False)
    bad = tmp_path / "broken.gguf"
    bad.write_bytes(b"GGUF\x03\x00\x00\x00not really")
    with pytest.raises(ModelError, match=r"broken.gguf: not a GGUF model transformers can read"):
        extract_features(tiny_cfg.replace(**{"extract.model": str(bad)}), progress=False)
    with pytest.raises(
        ExtractError,
        match=r"item\(s\) have an empty text, e.g. item 1 .*"
        r"none of text.attributes=\['brand'\] has a value",
    ):
        extract_features(
            cfg_for(tiny_cfg, tiny_llama, **{"text.attributes": ["brand"]}), progress=False
        )
    with pytest.raises(
        ExtractError,
        match=r"exceed extract.max_tokens=3, e.g. item 1 .* set "
        r"extract.truncate=true",
    ):
        extract_features(cfg_for(tiny_cfg, tiny_llama, **{"extract.max_tokens": 3}), progress=False)
    with pytest.raises(
        ExtractError,
        match=r"extract.max_tokens=4096 exceeds the model's context "
        r"of 128",
    ):
        extract_features(
            cfg_for(tiny_cfg, tiny_llama, **{"extract.max_tokens": 4096}), progress=False
        )
    with pytest.raises(ExtractError, match=r"extract.dtype=float16 needs a GPU"):
        extract_features(
            cfg_for(tiny_cfg, tiny_llama, **{"extract.dtype": "float16", "extract.device": "cpu"}),
            progress=False,
        )
    assert not list(Path(tiny_cfg.paths.home).rglob("manifest.json")) or all(
        "embeddings" not in str(p) for p in Path(tiny_cfg.paths.home).rglob("manifest.json")
    )
    path, _ = extract_features(
        cfg_for(tiny_cfg, tiny_llama, **{"extract.max_tokens": 3, "extract.truncate": True}),
        progress=False,
    )
    assert open_store(path).dim == 16


def test_two_torchrun_processes_write_the_store_of_one(tiny_cfg, tiny_llama, tmp_path):
    """``torchrun --nproc_per_node 2 -m recxplore extract``: each rank embeds its shards, one
    publishes, and the store is byte for byte the single process's (one thread each)."""
    import subprocess
    import sys

    import torch

    single = tiny_cfg.replace(**{"paths.home": str(tmp_path / "one")})
    cfg = cfg_for(single, tiny_llama).replace(**{"extract.shard_size": 8})
    # One thread, as each rank has: a matmul split over more threads sums in another order.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        reference, _ = extract_features(cfg, progress=False)
    finally:
        torch.set_num_threads(threads)
    two = cfg.replace(**{"paths.home": str(tmp_path / "two")})
    (tmp_path / "two.yaml").write_text(config.dump(two))
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--nproc_per_node",
            "2",
            "--master_port",
            "0",
            "-m",
            "recxplore",
            "extract",
            "--config",
            str(tmp_path / "two.yaml"),
            "--no-progress",
            "-q",
        ],
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    stores = list((tmp_path / "two" / "cache" / "embeddings").glob("*"))
    stores = [s for s in stores if (s / "manifest.json").is_file()]
    assert len(stores) == 1 and stores[0].name == reference.name
    names = sorted(p.name for p in reference.glob("shard-*"))
    assert len(names) > 2 and names == sorted(p.name for p in stores[0].glob("shard-*"))
    for name in names:
        assert (reference / name).read_bytes() == (stores[0] / name).read_bytes()
