"""Raw interactions -> Dataset: rating threshold, chronological order, de-duplication,
core filtering, re-indexing.

Order of operations (documented in the README):
1. keep ratings >= ``min_rating`` (if set);
2. sort each user's interactions by timestamp; ties keep the order of the source files;
3. de-duplicate repeated (user, item) pairs (keep first / last / none);
4. filter: ``kcore`` repeats user/item count filtering until stable; ``one_pass`` is LLMEmb /
   LLM-ESR's ``filter_common``: counts taken once on the whole log, users and items below the
   core dropped together, no iteration;
5. drop users with fewer than ``min_seq_len`` interactions;
6. re-index users and items by natural order of their raw ids (numbers numerically), items from 1.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np

from recxplore.config import DataConfig
from recxplore.data.dataset import Dataset
from recxplore.data.sources.readers import RawData
from recxplore.errors import DataError


def natural_key(raw_id: str) -> tuple:
    # ASCII digits only: "²" is a digit to str.isdigit but not to int()
    return tuple(int(t) if i % 2 else t for i, t in enumerate(re.split(r"([0-9]+)", raw_id)))


def _factorize(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(distinct values in first-seen order, each value's code): one hash per value, where
    ``np.unique`` on raw ids (Python objects) sorts them by Python comparisons, which was most
    of preparing a million-item catalogue. The codes only group; re-indexing orders the ids."""
    index: dict[Any, int] = {}
    codes = np.fromiter(
        (index.setdefault(v, len(index)) for v in values), dtype=np.int64, count=len(values)
    )
    distinct = np.empty(len(index), dtype=object)
    distinct[:] = list(index)
    return distinct, codes


def _counts(codes: np.ndarray, n: int) -> np.ndarray:
    return np.bincount(codes, minlength=n)


def _core_mask(
    user: np.ndarray, item: np.ndarray, n_users: int, n_items: int, user_core: int, item_core: int
) -> np.ndarray:
    return (_counts(user, n_users) >= user_core)[user] & (_counts(item, n_items) >= item_core)[item]


def preprocess(raw: RawData, cfg: DataConfig, name: str) -> Dataset:
    users, items, ratings, stamps = raw.columns()
    where = f"{name} ({', '.join(str(p) for p in raw.files)})"
    if len(users) == 0:
        raise DataError(f"{where}: no interactions were read; check that the files are complete")
    keep = np.ones(len(users), dtype=bool)
    if cfg.min_rating is not None:
        if np.isnan(ratings).all():
            raise DataError(
                f"{name}: data.min_rating={cfg.min_rating} is set but this dataset "
                f"has no ratings; remove data.min_rating"
            )
        keep &= ratings >= cfg.min_rating
    order = np.arange(len(users))
    user_ids, user_code = _factorize(users)
    item_ids, item_code = _factorize(items)
    # Chronological per user; the source-file position breaks timestamp ties.
    idx = np.lexsort((order, stamps, user_code))
    idx = idx[keep[idx]]
    if cfg.dedup != "none":
        pair = user_code[idx].astype(np.int64) * len(item_ids) + item_code[idx]
        if cfg.dedup == "first":
            _, first = np.unique(pair, return_index=True)
        else:
            _, rev_first = np.unique(pair[::-1], return_index=True)
            first = len(pair) - 1 - rev_first
        idx = idx[np.sort(first)]
    u, i = user_code[idx], item_code[idx]
    if cfg.filter == "one_pass":
        mask = _core_mask(u, i, len(user_ids), len(item_ids), cfg.user_core, cfg.item_core)
        idx, u, i = idx[mask], u[mask], i[mask]
    elif cfg.filter == "kcore":
        while True:
            mask = _core_mask(u, i, len(user_ids), len(item_ids), cfg.user_core, cfg.item_core)
            if mask.all():
                break
            idx, u, i = idx[mask], u[mask], i[mask]
    mask = (_counts(u, len(user_ids)) >= cfg.min_seq_len)[u]
    idx, u, i = idx[mask], u[mask], i[mask]
    if len(idx) == 0:
        raise DataError(
            f"{where}: no interactions left after filtering (min_rating="
            f"{cfg.min_rating}, filter={cfg.filter}, user_core={cfg.user_core}, "
            f"item_core={cfg.item_core}, min_seq_len={cfg.min_seq_len}); relax "
            f"these data.* settings"
        )
    # Re-index by natural raw-id order; item 0 is padding.
    kept_users = sorted(np.unique(u), key=lambda c: natural_key(str(user_ids[c])))
    kept_items = sorted(np.unique(i), key=lambda c: natural_key(str(item_ids[c])))
    user_new = np.full(len(user_ids), -1, dtype=np.int64)
    user_new[kept_users] = np.arange(len(kept_users))
    item_new = np.zeros(len(item_ids), dtype=np.int64)
    item_new[kept_items] = np.arange(1, len(kept_items) + 1)
    new_u = user_new[u]
    # Stable sort by new user id keeps each user's chronological order.
    by_user = np.argsort(new_u, kind="stable")
    seq_items = item_new[i][by_user]
    seq_times = stamps[idx][by_user]
    offsets = np.zeros(len(kept_users) + 1, dtype=np.int64)
    offsets[1:] = np.cumsum(np.bincount(new_u, minlength=len(kept_users)))
    item_raw = [str(item_ids[c]) for c in kept_items]
    meta: list[dict[str, Any]] = [{}] + [raw.item_meta.get(item_id, {}) for item_id in item_raw]
    return Dataset(
        name=name,
        user_ids=[str(user_ids[c]) for c in kept_users],
        item_ids=item_raw,
        offsets=offsets,
        items=seq_items.astype(np.int64),
        timestamps=seq_times.astype(np.float64),
        item_meta=meta,
    )
