"""Leave-one-out split: last item test, second-to-last validation, the rest training.

Users with fewer than 3 interactions (possible only with data.min_seq_len < 3) are used for
training only. The validation input is the training part; the test input adds the validation item.
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


def train_sequences(ds: Dataset) -> list[np.ndarray]:
    out = []
    for user in range(ds.n_users):
        seq = ds.sequence(user)
        out.append(seq[:-2] if len(seq) >= 3 else seq)
    return out


def eval_set(ds: Dataset, part: Part) -> EvalSet:
    cut = 2 if part == "valid" else 1
    users, inputs, targets = [], [], []
    for user in range(ds.n_users):
        seq = ds.sequence(user)
        if len(seq) < 3:
            continue
        users.append(user)
        inputs.append(seq[:-cut])
        targets.append(seq[-cut])
    return EvalSet(np.asarray(users, dtype=np.int64), inputs, np.asarray(targets, dtype=np.int64))
