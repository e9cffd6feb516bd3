"""A processed dataset: chronological item sequences per user and an item table.

Item index 0 is padding; items are 1..n_items. ``item_meta[i]`` holds the attributes of item i
(``item_meta[0]`` is empty). ``cold`` marks the items a cold-start split keeps out of training
(``recxplore.data.regime``; None: none). ``item_fingerprint`` hashes the item ids in index order: every
feature matrix built for this dataset carries it, and a mismatch is refused.
"""

from __future__ import annotations

import hashlib
import json
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import numpy as np

from recxplore.errors import ArtifactError


def fingerprint_ids(item_ids: list[str]) -> str:
    digest = hashlib.sha256()
    for item_id in item_ids:
        digest.update(item_id.encode())
        digest.update(b"\0")
    return digest.hexdigest()[:16]


@dataclass
class Dataset:
    name: str
    user_ids: list[str]  # user u (0-based) -> raw id
    item_ids: list[str]  # item i (1-based) -> raw id at item_ids[i - 1]
    offsets: np.ndarray  # (n_users + 1,) int64: user u's items are items[offsets[u]:offsets[u+1]]
    items: np.ndarray  # (n_interactions,) int64 item indices, chronological per user
    timestamps: np.ndarray  # (n_interactions,) float64 seconds
    item_meta: list[dict[str, Any]]  # (n_items + 1,) attributes; row 0 padding
    cold: Optional[np.ndarray] = None  # (n_items + 1,) bool: kept out of training

    def __post_init__(self) -> None:
        assert len(self.offsets) == len(self.user_ids) + 1
        assert len(self.item_meta) == len(self.item_ids) + 1
        self.item_fingerprint = fingerprint_ids(self.item_ids)
        self.catalogue_key = ""  # the prepared dataset's cache key (set by prepare)

    @property
    def n_users(self) -> int:
        return len(self.user_ids)

    @property
    def n_items(self) -> int:
        return len(self.item_ids)

    @property
    def n_interactions(self) -> int:
        return int(len(self.items))

    def sequence(self, user: int) -> np.ndarray:
        return self.items[self.offsets[user] : self.offsets[user + 1]]

    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    def stats(self) -> dict[str, Any]:
        lengths = self.lengths()
        active = int((np.bincount(self.items, minlength=self.n_items + 1)[1:] > 0).sum())
        return {
            "dataset": self.name,
            "users": self.n_users,
            "items": self.n_items,
            "interactions": self.n_interactions,
            "avg_seq_len": round(float(lengths.mean()), 2) if len(lengths) else 0.0,
            "median_seq_len": float(np.median(lengths)) if len(lengths) else 0.0,
            "items_with_interactions": active,
            "avg_item_count": round(self.n_interactions / max(1, active), 2),
            "density": round(self.n_interactions / max(1, self.n_users * self.n_items), 6),
            **({"cold_items": int(self.cold.sum())} if self.cold is not None else {}),
            "items_with_metadata": sum(1 for m in self.item_meta[1:] if m),
            "item_fingerprint": self.item_fingerprint,
        }

    # -- storage: data.npz + users.json + items.jsonl ------------------------------------------

    def save(self, folder: Path) -> None:
        arrays = {"offsets": self.offsets, "items": self.items, "timestamps": self.timestamps}
        if self.cold is not None:
            arrays["cold"] = self.cold
        np.savez(folder / "data.npz", **arrays)  # type: ignore[arg-type]
        (folder / "users.json").write_text(json.dumps(self.user_ids), encoding="utf-8")
        with open(folder / "items.jsonl", "w", encoding="utf-8") as f:
            for index, (item_id, meta) in enumerate(zip([""] + self.item_ids, self.item_meta)):
                f.write(
                    json.dumps({"index": index, "id": item_id, "meta": meta}, ensure_ascii=False)
                    + "\n"
                )

    @classmethod
    def load(cls, folder: Path, name: str) -> Dataset:
        try:
            with np.load(folder / "data.npz") as npz:  # read every array now, inside the try
                arrays = {k: npz[k] for k in ("offsets", "items", "timestamps")}
                cold = npz["cold"] if "cold" in npz else None
            user_ids = json.loads((folder / "users.json").read_text(encoding="utf-8"))
            rows = [
                json.loads(line)
                for line in (folder / "items.jsonl").read_text(encoding="utf-8").splitlines()
            ]
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile, zlib.error) as err:
            raise ArtifactError(
                f"{folder}: processed dataset is unreadable ({err}); delete the "
                f"folder and run `recxplore prepare {name}` again"
            ) from None
        return cls(
            name=name,
            user_ids=user_ids,
            item_ids=[r["id"] for r in rows[1:]],
            offsets=arrays["offsets"],
            items=arrays["items"],
            timestamps=arrays["timestamps"],
            item_meta=[r["meta"] for r in rows],
            cold=cold,
        )
