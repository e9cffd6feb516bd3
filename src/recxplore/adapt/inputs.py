"""What a feature-based item embedder is built from: the stage outputs the pipeline hands it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np


@dataclass(frozen=True)
class UserNeighbours:
    """Each user's most similar users (by an LLM embedding of their histories) and every
    user's latest training input, for a model that distils from similar users (LLM-ESR)."""

    similar: np.ndarray  # (n_users, k) user indices, most similar first, never the user
    histories: np.ndarray  # (n_users, max_len) left-padded latest training inputs


@dataclass(frozen=True)
class ItemInputs:
    """The item inputs of one run, and the cache keys they came from (part of the run's key).

    A component names what it needs in its registry entry (``requires``): ``features`` (the
    reduced LLM features), ``codes`` (PQ codes of them) or ``id_table`` (a pretrained ID table).
    """

    features: Optional[np.ndarray] = None  # (n_items + 1, d) reduced LLM features
    codes: Optional[np.ndarray] = None  # (n_items + 1, M) PQ codes
    id_table: Optional[np.ndarray] = None  # (n_items + 1, hidden) pretrained ID embeddings
    seen: Optional[np.ndarray] = None  # (n_items + 1,) bool: the item occurs in training
    neighbours: Optional[UserNeighbours] = None
    keys: tuple[str, ...] = ()
