"""The embedding store: a documented on-disk format other tools can read.

A folder with ``manifest.json`` and shards ``shard-NNNNN.safetensors``. Shard k covers item
indices ``[k * shard_size, (k + 1) * shard_size)`` and holds ``embeddings`` (float32,
rows x dim) and ``index`` (int64 item indices of those rows). Row 0 is padding (zeros). The
manifest names the dataset and its item fingerprint, the extractor, pooling, text settings,
dtype, rows and dim, and each shard's SHA-256.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Optional

import numpy as np
from safetensors import SafetensorError
from safetensors.numpy import load_file, save_file

from recxplore.cache import MANIFEST, verify_file
from recxplore.data.dataset import Dataset
from recxplore.errors import ArtifactError

SHARD = "shard-{:05d}.safetensors"


def shard_ranges(rows: int, shard_size: int) -> list[tuple[int, int]]:
    return [(start, min(start + shard_size, rows)) for start in range(0, rows, shard_size)]


def shard_path(folder: Path, k: int) -> Path:
    return folder / SHARD.format(k)


def write_shard(folder: Path, k: int, index: np.ndarray, embeddings: np.ndarray) -> None:
    """Write one shard atomically (a crash leaves no half-written shard)."""
    path = shard_path(folder, k)
    tmp = path.with_name(path.name + ".tmp")
    save_file(
        {
            "embeddings": np.ascontiguousarray(embeddings, dtype=np.float32),
            "index": np.ascontiguousarray(index, dtype=np.int64),
        },
        str(tmp),
    )
    os.replace(tmp, path)


@dataclass
class EmbeddingStore:
    path: Path
    manifest: dict[str, Any]
    embeddings: np.ndarray  # (rows, dim) aligned with the item index; row 0 padding

    @property
    def dim(self) -> int:
        return int(self.embeddings.shape[1])


def read_manifest(
    path: Path,
    ds: Optional[Dataset] = None,
    expect: Optional[dict[str, Any]] = None,
    verify: Literal["no", "present", "all"] = "no",
) -> dict[str, Any]:
    """A store's manifest, refused when it does not match ``ds`` or ``expect``; loads no
    embeddings, so a run whose reduced features are cached never loads the store. ``verify``
    checks shards against their checksums (once per process): ``all`` of them, or those
    ``present`` (a machine given only the reduced features has no shards)."""
    path = Path(path)
    try:
        manifest = json.loads((path / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as err:
        raise ArtifactError(
            f"{path}: not an embedding store ({err}); run `recxplore extract`"
        ) from None
    if ds is not None:
        if manifest["rows"] != ds.n_items + 1:
            raise ArtifactError(
                f"{path}: has {manifest['rows']} rows but dataset {ds.name} "
                f"needs {ds.n_items + 1} (items + padding); it was built for "
                f"another dataset or filter; extract features for this dataset"
            )
        if manifest["item_fingerprint"] != ds.item_fingerprint:
            raise ArtifactError(
                f"{path}: item fingerprint {manifest['item_fingerprint']} does "
                f"not match dataset {ds.name} ({ds.item_fingerprint}): the rows "
                f"would be other items; extract features for this dataset"
            )
    for key, value in (expect or {}).items():
        if manifest.get(key) != value:
            raise ArtifactError(
                f"{path}: built with {key}={manifest.get(key)!r}, expected "
                f"{value!r}; extract again with the wanted settings"
            )
    for shard in manifest["shards"] if verify != "no" else ():
        if verify == "present" and not (path / shard["file"]).exists():
            continue
        verify_file(
            path / shard["file"],
            shard["sha256"],
            f"delete {path} and run `recxplore extract` again",
        )
    return manifest


def read_shards(
    path: Path, ds: Optional[Dataset] = None, expect: Optional[dict[str, Any]] = None
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """(item indices, embeddings) of each shard of a validated store, one shard in memory at a
    time; refuses what ``open_store`` refuses (the missing rows once every shard is read)."""
    path = Path(path)
    manifest = read_manifest(path, ds, expect, verify="all")
    rows, dim = manifest["rows"], manifest["dim"]
    seen = np.zeros(rows, dtype=bool)
    for shard in manifest["shards"]:
        file = path / shard["file"]  # verified by read_manifest
        try:
            tensors = load_file(str(file))
        except (SafetensorError, OSError) as err:
            raise ArtifactError(
                f"{file}: unreadable ({err}); delete {path} and run `recxplore extract` again"
            ) from None
        index, emb = tensors["index"], tensors["embeddings"]
        if (
            emb.shape != (len(index), dim)
            or index.min(initial=0) < 0
            or index.max(initial=0) >= rows
        ):
            raise ArtifactError(
                f"{file}: shape {emb.shape} or index range does not match the "
                f"manifest ({rows} rows x {dim})"
            )
        bad = ~np.isfinite(emb).all(1)
        if bad.any():
            raise ArtifactError(
                f"{file}: {int(bad.sum())} row(s) hold NaN or Inf (first item indices "
                f"{index[bad][:5].tolist()}); re-extract in float32 "
                f"(extract.dtype=float32)"
            )
        seen[index] = True
        yield index, emb
    if not seen[1:].all():
        missing = np.flatnonzero(~seen[1:])[:5] + 1
        raise ArtifactError(
            f"{path}: rows {missing.tolist()} are in no shard; the store is incomplete"
        )


def open_store(
    path: Path, ds: Optional[Dataset] = None, expect: Optional[dict[str, Any]] = None
) -> EmbeddingStore:
    """Read and validate a store; refuse a mismatch with ``ds`` or ``expect``, altered shards
    and NaN/Inf rows."""
    path = Path(path)
    manifest = read_manifest(path, ds, expect)
    matrix = np.zeros((manifest["rows"], manifest["dim"]), dtype=np.float32)
    for index, emb in read_shards(path, ds, expect):
        matrix[index] = emb
    return EmbeddingStore(path, manifest, matrix)
