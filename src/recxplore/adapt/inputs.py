"""What a feature-based item embedder is built from: the stage outputs the pipeline hands it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from recxplore.extract.users import UserNeighbours


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
    # what making them took, once, before any run reads them (tuning stages, extraction, user
    # embedding): stage -> seconds, as their manifests record it
    upstream_seconds: dict[str, float] = field(default_factory=dict)
    keys: tuple[str, ...] = ()
