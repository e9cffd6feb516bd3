"""Leave-one-out split: last item test, second-to-last validation, the rest training.

Users with fewer than 3 interactions (possible only with data.min_seq_len < 3) are used for
training only. The validation input is the training part; the test input adds the validation item.

A cold-start dataset (``ds.cold``, see ``recxplore.data.regime``) keeps its cold items out of
every training part, so out of training sequences and validation inputs; a user whose training
part is then empty has no history to recommend from and is used for nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from recxplore.data.dataset import Dataset

Part = Literal["valid", "test"]


@dataclass
class EvalSet:
    users: np.ndarray  # (U,) user indices
    inputs: list[np.ndarray]  # U histories, chronological
    targets: np.ndarray  # (U,) item indices

    def __len__(self) -> int:
        return len(self.users)


def _training_part(ds: Dataset, seq: np.ndarray) -> np.ndarray:
    part = seq[:-2] if len(seq) >= 3 else seq
    return part if ds.cold is None else part[~ds.cold[part]]


def train_sequences(ds: Dataset) -> list[np.ndarray]:
    return [_training_part(ds, ds.sequence(user)) for user in range(ds.n_users)]


def seen_items(ds: Dataset) -> np.ndarray:
    """(n_items + 1,) bool: the items that occur in a training sequence (padding: False)."""
    seen = np.zeros(ds.n_items + 1, dtype=bool)
    for seq in train_sequences(ds):
        seen[seq] = True
    seen[0] = False
    return seen


def eval_set(ds: Dataset, part: Part) -> EvalSet:
    users, inputs, targets = [], [], []
    for user in range(ds.n_users):
        seq = ds.sequence(user)
        if len(seq) < 3:
            continue
        history = _training_part(ds, seq)
        if not len(history):
            continue
        users.append(user)
        inputs.append(history if part == "valid" else np.append(history, seq[-2]))
        targets.append(seq[-2] if part == "valid" else seq[-1])
    return EvalSet(np.asarray(users, dtype=np.int64), inputs, np.asarray(targets, dtype=np.int64))
