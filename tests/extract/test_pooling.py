"""Pooling against hand computation on a tiny random LLaMA, under both padding sides."""

import numpy as np
import pytest
import torch

from recxplore.extract.encode import encode, tokenize
from recxplore.llm import models

TEXTS = [
    "title is Item number 3",
    "genres is genre1",
    "title is Item number 12 genres is genre0 genre2 genre4",
    "Item",
]


def by_hand(hidden: torch.Tensor, pooling: str) -> np.ndarray:
    """hidden: (L, D) states of one unpadded text."""
    if pooling == "mean":
        return hidden.mean(0).numpy()
    if pooling == "max":
        return hidden.max(0).values.numpy()
    if pooling in ("last", "eol"):
        return hidden[-1].numpy()
    return hidden[0].numpy()


def encode_batched(loaded, ids, pooling, side, span=(0, 0)) -> np.ndarray:
    """The texts pooled in padded batches of four."""
    return encode(
        loaded,
        ids,
        pooling=pooling,
        layer=-1,
        batch_size=4,
        padding_side=side,
        device=torch.device("cpu"),
        span=span,
    )


def states_alone(loaded, ids: list[int]) -> torch.Tensor:
    """(L, D) last hidden states of one text, unpadded."""
    with torch.no_grad():
        return loaded.model(input_ids=torch.tensor([ids])).last_hidden_state[0]


@pytest.mark.parametrize("side", ["right", "left"])
@pytest.mark.parametrize("pooling", ["mean", "max", "last", "first", "eol"])
def test_batched_pooling_matches_one_text_at_a_time(tiny_llama, tmp_path, pooling, side):
    loaded = models.load(str(tiny_llama), models_dir=tmp_path)
    template = 'This item: "{text}" means in one word:"'
    ids = tokenize(loaded, TEXTS, template=template if pooling == "eol" else "{text}")
    assert len({len(x) for x in ids}) > 1, "the texts must need padding"
    got = encode_batched(loaded, ids, pooling, side)
    for row, x in enumerate(ids):
        hidden = states_alone(loaded, x)
        np.testing.assert_allclose(got[row], by_hand(hidden, pooling), rtol=1e-4, atol=1e-5)


def test_intermediate_layer(tiny_llama, tmp_path):
    loaded = models.load(str(tiny_llama), models_dir=tmp_path)
    ids = tokenize(loaded, TEXTS[:2])
    got = encode(
        loaded,
        ids,
        pooling="mean",
        layer=1,
        batch_size=2,
        padding_side="right",
        device=torch.device("cpu"),
    )
    with torch.no_grad():
        states = loaded.model(input_ids=torch.tensor([ids[0]]), output_hidden_states=True)
    np.testing.assert_allclose(
        got[0], states.hidden_states[1][0].mean(0).numpy(), rtol=1e-4, atol=1e-5
    )
    from recxplore.errors import ConfigError

    with pytest.raises(ConfigError, match="extract.layer=7: the model has 2 layers"):
        encode(
            loaded,
            ids,
            pooling="mean",
            layer=7,
            batch_size=2,
            padding_side="right",
            device=torch.device("cpu"),
        )


def test_shared_affixes_leave_every_text_a_token():
    from recxplore.extract.pooling import shared_affixes

    assert shared_affixes([[1, 2, 3, 9, 4], [1, 2, 5, 4], [1, 2, 6, 7, 4]]) == (2, 1)
    assert shared_affixes([[1, 2], [1, 2, 3]]) == (1, 0)
    assert shared_affixes([[7, 8, 9], [7, 8, 9]]) == (2, 0)
    assert shared_affixes([[5], [6, 5]]) == (0, 0)


@pytest.mark.parametrize("side", ["right", "left"])
@pytest.mark.parametrize("pooling", ["mean", "max", "last", "first"])
def test_own_token_pooling_leaves_out_the_shared_template(tiny_llama, tmp_path, pooling, side):
    from recxplore.extract.pooling import shared_affixes

    loaded = models.load(str(tiny_llama), models_dir=tmp_path)
    template = "The item has the following attributes: {text} . end"
    ids = tokenize(loaded, TEXTS, template=template)
    start, cut = shared_affixes(ids)
    assert start >= 5 and cut >= 1, "the template's tokens are shared"
    got = encode_batched(loaded, ids, pooling, side, span=(start, cut))
    for row, x in enumerate(ids):
        own = states_alone(loaded, x)[
            start : len(x) - cut
        ]  # states over the whole text, pooled over its own
        np.testing.assert_allclose(got[row], by_hand(own, pooling), rtol=1e-4, atol=1e-5)


def test_tokenising_in_chunks_gives_the_ids_of_one_call(tiny_llama, tmp_path, monkeypatch):
    from recxplore.extract import encode as encode_module

    loaded = models.load(str(tiny_llama), models_dir=tmp_path)
    template = "Item: {text}."
    want = loaded.tokenizer([template.replace("{text}", t) for t in TEXTS])["input_ids"]
    monkeypatch.setattr(encode_module, "TOKENIZE_CHUNK", 2)
    assert tokenize(loaded, TEXTS, template=template) == want
