"""``users``: each user embedded by the extractor from a prompt naming their training items, and
their most similar users by cosine similarity (LLM-ESR's retrieval of similar users).

LLM-ESR (liuqidong07/LLM-ESR, ``data/*/get_user_embedding.ipynb``, ``retrieval_users.ipynb``)
embeds a prompt listing the names of a user's training items with text-embedding-ada-002 and
keeps each user's 100 nearest users by cosine. recxplore embeds the same kind of prompt with
the configured extractor (the base model, without the items' LoRA stages) and its pooling,
naming the user's ``adapt.llmesr_user_items`` most recent training items (the authors cut the
list at 8,000 characters; a prompt longer than ``extract.max_tokens``, 512 by default, loses its
first tokens). The static extractor cannot embed a prompt and is refused with the config. Only the training part of a history is named: validation and test
items never reach the prompt. A user with no training input is nobody's neighbour.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any, Optional

import numpy as np
from tqdm.auto import tqdm

from recxplore.cache import Artifact, home_dir, read_arrays, stage_key
from recxplore.config import Config
from recxplore.data.dataset import Dataset
from recxplore.data.split import train_sequences
from recxplore.extract.encode import encode, tokenize
from recxplore.extract.stage import load_extractor
from recxplore.llm import models

log = logging.getLogger(__name__)

PROMPT = (
    "A user has interacted with these items, oldest first:\n{history}\n"
    "Describe this user's preferences."
)
NEIGHBOURS_KEPT = 100  # as the authors: runs choose how many of them to use


@dataclass(frozen=True)
class UserNeighbours:
    """Each user's most similar users and every user's latest training input, for a model
    that distils from similar users (LLM-ESR)."""

    similar: np.ndarray  # (n_users, k) user indices, most similar first, never the user
    histories: np.ndarray  # (n_users, max_len) left-padded latest training inputs


def item_name(meta: dict[str, Any], index: int) -> str:
    """What names an item in a user's prompt: its title, else its first attribute."""
    for key in ("title", "name"):
        if meta.get(key):
            return str(meta[key])
    values = [v for v in meta.values() if v not in (None, "", [])]
    return str(values[0]) if values else f"item {index}"


def user_prompts(ds: Dataset, max_items: int) -> list[str]:
    names = [""] + [item_name(ds.item_meta[i], i) for i in range(1, ds.n_items + 1)]
    return [
        PROMPT.format(history=", ".join(names[i] for i in seq[-max_items:]))
        for seq in train_sequences(ds)
    ]


def user_neighbours(
    cfg: Config, ds: Dataset, dataset_key: str, progress: bool = True
) -> tuple[UserNeighbours, str, Optional[float]]:
    """Every user's most similar users and latest training input, with the stage's key and the
    seconds it took (None if not recorded)."""
    settings = cfg.adapt.options("llmesr")
    home = home_dir(cfg.paths.home)
    ex = cfg.extract
    identity = models.resolve(ex.model, home / "models")[1]
    key = stage_key(
        "users",
        {
            "prompt": PROMPT,
            "user_items": settings.user_items,
            "model": identity,
            "pooling": ex.pooling,
            "layer": ex.layer,
            "max_tokens": ex.max_tokens,
        },
        (dataset_key,),
    )
    art = Artifact(home / "cache", "users", key)

    def build() -> np.ndarray:
        started = time.perf_counter()
        embeddings = _embed_users(cfg, ds, settings.user_items, progress)
        similar = most_similar(embeddings, _has_input(ds), NEIGHBOURS_KEPT)
        folder = art.begin(fresh=True)
        from safetensors.numpy import save_file

        save_file({"similar": np.ascontiguousarray(similar)}, str(folder / "similar.safetensors"))
        art.publish(
            {
                "dataset": ds.name,
                "users": ds.n_users,
                "dim": int(embeddings.shape[1]),
                "seconds": round(time.perf_counter() - started, 3),
            },
            files=("similar.safetensors",),
        )
        return similar

    similar = art.reuse_or_build(lambda: read_arrays(art, "similar.safetensors")["similar"], build)
    neighbours = UserNeighbours(similar, latest_inputs(ds, cfg.model.max_len))
    return neighbours, key, art.manifest().get("seconds")


def _has_input(ds: Dataset) -> np.ndarray:
    return np.array([len(seq) >= 2 for seq in train_sequences(ds)])


def latest_inputs(ds: Dataset, max_len: int) -> np.ndarray:
    """(n_users, max_len): each user's training inputs (their training part but its last item,
    the authors' similar-user sequence), latest ``max_len`` of them, left-padded."""
    out = np.zeros((ds.n_users, max_len), dtype=np.int64)
    for user, seq in enumerate(train_sequences(ds)):
        inputs = seq[:-1][-max_len:]
        out[user, max_len - len(inputs) :] = inputs
    return out


def most_similar(embeddings: np.ndarray, candidates: np.ndarray, k: int) -> np.ndarray:
    """(n_users, k) by cosine, most similar first, never the user themself; only ``candidates``
    (bool per user) are chosen. Computed in blocks of users, so memory stays n_users x block."""
    unit = embeddings / np.maximum(np.linalg.norm(embeddings, axis=1, keepdims=True), 1e-12)
    n = len(unit)
    k = min(k, max(int(candidates.sum()) - 1, 1))
    out = np.zeros((n, k), dtype=np.int64)
    for start in range(0, n, 1024):
        scores = unit[start : start + 1024] @ unit.T  # (block, n)
        scores[:, ~candidates] = -np.inf
        rows = np.arange(scores.shape[0])
        scores[rows, start + rows] = -np.inf
        top = np.argpartition(-scores, k - 1, axis=1)[:, :k]
        order = np.argsort(-np.take_along_axis(scores, top, axis=1), axis=1, kind="stable")
        out[start : start + len(rows)] = np.take_along_axis(top, order, axis=1)
    return out


def _embed_users(cfg: Config, ds: Dataset, max_items: int, progress: bool) -> np.ndarray:
    ex = cfg.extract
    device, loaded = load_extractor(cfg, home_dir(cfg.paths.home) / "models")
    limit = ex.max_tokens or min(loaded.context or 512, 512)
    ids = [x[-limit:] for x in tokenize(loaded, user_prompts(ds, max_items))]
    started = time.perf_counter()
    bar = tqdm(total=len(ids), desc=f"users {ex.model}", unit="user", disable=not progress)
    embeddings = encode(
        loaded,
        ids,
        pooling=ex.pooling,
        layer=ex.layer,
        batch_size=ex.batch_size,
        padding_side=ex.padding_side,
        device=device,
        on_batch=bar.update,
    )
    bar.close()
    log.info("embedded %d users in %.1fs", len(ids), time.perf_counter() - started)
    return embeddings
