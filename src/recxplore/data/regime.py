"""The regime a study asks about, made from a prepared dataset: thinned on purpose, or split so
that the newest items are cold.

Thinning, in this order: a share of users drawn at random (``data.user_share``), a share of each
user's interactions drawn at random and kept in their order (``data.interaction_share``), each
user's most recent ``data.max_history`` interactions; then users left with fewer than
``data.min_seq_len`` are dropped. The catalogue stays whole: item indices, metadata and so the
LLM features are those of the prepared dataset, and an item left without interactions is still a
candidate at ranking, as it is in the catalogue it came from.

Cold start (``data.cold_share``, the Recformer protocol): the newest share of the items that
still have interactions, by first interaction time (ties: the higher item index is newer), never
occur in a training sequence or a validation input; they occur as validation and test targets,
and in a test input only as the validation target before it. ``recxplore.data.split`` applies
the mask.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from recxplore.config import DataConfig
from recxplore.data.dataset import Dataset
from recxplore.data.split import train_sequences
from recxplore.errors import DataError

# The regime settings at their "not set" values: a config equal to its catalogue is no regime.
UNSET: dict[str, Any] = {
    "user_share": 1.0,
    "interaction_share": 1.0,
    "max_history": None,
    "cold_share": 0.0,
}


def catalogue(cfg: DataConfig) -> DataConfig:
    """``cfg`` without its regime: the settings of the prepared dataset the regime starts from."""
    return dataclasses.replace(cfg, **UNSET)


def is_regime(cfg: DataConfig) -> bool:
    return any(getattr(cfg, name) != value for name, value in UNSET.items())


def _kept_rows(ds: Dataset, cfg: DataConfig) -> tuple[np.ndarray, list[np.ndarray]]:
    """The users kept and, for each, the positions of its interactions kept."""
    users = np.arange(ds.n_users)
    if cfg.user_share < 1:
        rng = np.random.default_rng([cfg.sample_seed, 0])
        n = max(1, round(cfg.user_share * ds.n_users))
        users = np.sort(rng.choice(ds.n_users, size=n, replace=False))
    rng = np.random.default_rng([cfg.sample_seed, 1])
    kept_users, rows = [], []
    for user in users:
        idx = np.arange(ds.offsets[user], ds.offsets[user + 1])
        if cfg.interaction_share < 1:
            k = max(1, round(cfg.interaction_share * len(idx)))
            idx = np.sort(rng.choice(idx, size=k, replace=False))
        if cfg.max_history is not None:
            idx = idx[-cfg.max_history :]
        if len(idx) >= cfg.min_seq_len:
            kept_users.append(user)
            rows.append(idx)
    return np.asarray(kept_users, dtype=np.int64), rows


def thin(ds: Dataset, cfg: DataConfig) -> Dataset:
    users, rows = _kept_rows(ds, cfg)
    if len(users) == 0:
        raise DataError(
            f"{ds.name}: no user keeps data.min_seq_len={cfg.min_seq_len} interactions after "
            f"data.user_share={cfg.user_share}, data.interaction_share={cfg.interaction_share}, "
            f"data.max_history={cfg.max_history}; raise them"
        )
    idx = np.concatenate(rows)
    offsets = np.zeros(len(users) + 1, dtype=np.int64)
    offsets[1:] = np.cumsum([len(r) for r in rows])
    return Dataset(
        name=ds.name,
        user_ids=[ds.user_ids[u] for u in users],
        item_ids=ds.item_ids,
        offsets=offsets,
        items=ds.items[idx],
        timestamps=ds.timestamps[idx],
        item_meta=ds.item_meta,
    )


def cold_items(ds: Dataset, share: float) -> np.ndarray:
    """(n_items + 1,) bool: the newest ``share`` of the items with interactions."""
    first = np.full(ds.n_items + 1, np.inf)
    np.minimum.at(first, ds.items, ds.timestamps)
    active = np.flatnonzero(np.isfinite(first))
    n_cold = max(1, round(share * len(active)))
    if n_cold >= len(active):
        raise DataError(
            f"{ds.name}: data.cold_share={share} makes all {len(active)} items with "
            f"interactions cold; lower it"
        )
    newest = active[np.lexsort((active, first[active]))][::-1][:n_cold]
    cold = np.zeros(ds.n_items + 1, dtype=bool)
    cold[newest] = True
    return cold


def apply_regime(ds: Dataset, cfg: DataConfig) -> Dataset:
    """The dataset of ``cfg``'s regime, made from the prepared dataset ``ds``."""
    if any(getattr(cfg, k) != UNSET[k] for k in ("user_share", "interaction_share", "max_history")):
        ds = thin(ds, cfg)
    if cfg.cold_share > 0:
        ds = dataclasses.replace(ds, cold=cold_items(ds, cfg.cold_share))
        if not sum(len(s) for s in train_sequences(ds)):
            raise DataError(
                f"{ds.name}: data.cold_share={cfg.cold_share} leaves no training "
                f"interactions; lower it"
            )
    return ds
