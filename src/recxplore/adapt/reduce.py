"""Offline dimensionality reduction of the stored LLM features (PCA, cached with its store),
and centring without PCA (``adapt.center``).

Fitted on all items (the paper's practice) or only on items that occur in training sequences
(``adapt.pca_fit=train``, so nothing about validation/test-only items shapes the projection).
Item text is metadata, not interactions, so either choice is leak-free for the ranking targets;
``train`` is the stricter one. Row 0 (padding) stays zero.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Optional

import numpy as np
from safetensors.numpy import save_file

from recxplore.cache import Artifact, read_arrays, stage_key
from recxplore.config import AdaptConfig
from recxplore.data.dataset import Dataset
from recxplore.data.split import train_sequences
from recxplore.errors import ArtifactError


def pca_settings(cfg: AdaptConfig) -> dict:
    settings = {"pca": cfg.pca, "whiten": cfg.pca_whiten, "fit": cfg.pca_fit}
    if cfg.pca_sample is not None:  # older keys hold no sample
        settings["sample"] = cfg.pca_sample
    return settings


def fit_rows(ds: Dataset, fit: str, sample: Optional[int] = None) -> np.ndarray:
    """The rows the reduction is fitted on: every item, or the items in training sequences;
    at most ``sample`` of them, drawn with seed 0."""
    if fit == "all":
        rows = np.arange(1, ds.n_items + 1)
    else:
        seen = np.unique(np.concatenate([s for s in train_sequences(ds) if len(s)]))
        rows = seen[seen > 0]
    if sample is not None and len(rows) > sample:
        rows = np.sort(np.random.default_rng(0).choice(rows, size=sample, replace=False))
    return rows


@dataclass(frozen=True)
class Reduction:
    """A fitted reduction of raw store rows: ``(x - mean) @ components.T / scale``; row 0
    (padding) maps to zero. Saved in serving bundles so new items are reduced alike."""

    mean: np.ndarray  # (d,)
    components: np.ndarray  # (k, d); the identity for centring only
    scale: np.ndarray  # (k,); ones unless whitened

    def apply(self, matrix: np.ndarray) -> np.ndarray:
        out = ((matrix - self.mean) @ self.components.T / self.scale).astype(np.float32)
        return out

    def arrays(self) -> dict[str, np.ndarray]:
        return {"mean": self.mean, "components": self.components, "scale": self.scale}


def _fit(fit: np.ndarray, components: float, whiten: bool, seed: int) -> Any:
    """sklearn's PCA fitted on the rows of ``fit``."""
    from sklearn.decomposition import PCA

    n: float = (
        int(min(components, fit.shape[0], fit.shape[1])) if components >= 1 else float(components)
    )
    return PCA(n_components=n, whiten=whiten, svd_solver="full", random_state=seed).fit(fit)


def fit_pca(
    matrix: np.ndarray, rows: np.ndarray, components: float, whiten: bool, seed: int = 0
) -> Reduction:
    """The PCA fitted on ``rows`` of ``matrix``, as parameters."""
    pca = _fit(matrix[rows], components, whiten, seed)
    scale = np.sqrt(pca.explained_variance_) if whiten else np.ones(pca.n_components_)
    return Reduction(pca.mean_, pca.components_, scale)


def pca_transform(
    matrix: np.ndarray, rows: np.ndarray, components: float, whiten: bool, seed: int = 0
) -> tuple[np.ndarray, float]:
    """(reduced matrix with row 0 zero, explained variance share)."""
    return pca_by_shards(lambda: [(np.arange(len(matrix)), matrix)], rows, components, whiten, seed)


Shards = Callable[[], Iterable[tuple[np.ndarray, np.ndarray]]]  # (item indices, rows) per shard


def pca_by_shards(
    shards: Shards, rows: np.ndarray, components: float, whiten: bool, seed: int = 0
) -> tuple[np.ndarray, float]:
    """``pca_transform`` of a matrix read shard by shard (``shards()`` is read twice): the fit
    rows are gathered in one pass and each shard is transformed in a second, so memory is the
    fit rows plus the reduced matrix, never the full one."""
    fit: Optional[np.ndarray] = None
    n_rows = 0
    for index, block in shards():
        if fit is None:
            fit = np.zeros((len(rows), block.shape[1]), dtype=block.dtype)
        n_rows = max(n_rows, int(index.max(initial=0)) + 1)
        mine = np.isin(index, rows)
        fit[np.searchsorted(rows, index[mine])] = block[mine]
    assert fit is not None, "a store has at least one shard"
    pca = _fit(fit, components, whiten, seed)
    del fit
    out = np.zeros((n_rows, pca.n_components_), dtype=np.float32)
    for index, block in shards():
        out[index] = pca.transform(block)
    out[0] = 0.0
    return out, float(pca.explained_variance_ratio_.sum())


def fitted_reduction(matrix: np.ndarray, ds: Dataset, cfg: AdaptConfig) -> Reduction:
    """The reduction ``reduced_features`` applies to ``matrix`` under ``cfg``, as parameters."""
    rows = fit_rows(ds, cfg.pca_fit, cfg.pca_sample)
    d = matrix.shape[1]
    if cfg.pca is not None:
        return fit_pca(matrix, rows, cfg.pca, cfg.pca_whiten)
    mean = matrix[rows].mean(axis=0, dtype=np.float64) if cfg.center else np.zeros(d)
    return Reduction(mean, np.eye(d), np.ones(d))


def centred(matrix: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """``matrix`` less the mean of its ``rows``; row 0 (padding) stays zero."""
    out = (matrix - matrix[rows].mean(axis=0, dtype=np.float64)).astype(np.float32)
    out[0] = 0.0
    return out


def reduced_features(
    load: Callable[[], np.ndarray],
    shards: Shards,
    store_key: str,
    ds: Dataset,
    dataset_key: str,
    cfg: AdaptConfig,
    cache_root,
) -> tuple[np.ndarray, str]:
    """The PCA-reduced (or unchanged, or centred) feature matrix and its artifact key; ``load``
    reads the full store (for no reduction or centring), ``shards`` reads it shard by shard
    (for PCA), and neither is called when the reduction is cached."""
    if cfg.pca is None:
        if not cfg.center:
            return load(), store_key
        # cheap enough not to cache; the key says the matrix is not the store's
        fit = {k: v for k, v in pca_settings(cfg).items() if k in ("fit", "sample")}
        key = stage_key("center", fit, (store_key, dataset_key))
        return centred(load(), fit_rows(ds, cfg.pca_fit, cfg.pca_sample)), key
    settings = pca_settings(cfg)
    key = stage_key("reduce", settings, (store_key, dataset_key))
    art = Artifact(cache_root, "reduced", key)

    def build() -> np.ndarray:
        assert cfg.pca is not None
        rows = fit_rows(ds, cfg.pca_fit, cfg.pca_sample)
        reduced, explained = pca_by_shards(shards, rows, cfg.pca, cfg.pca_whiten)
        folder = art.begin(fresh=True)
        save_file({"features": np.ascontiguousarray(reduced)}, str(folder / "features.safetensors"))
        art.publish(
            {
                "settings": settings,
                "store": store_key,
                "rows": int(reduced.shape[0]),
                "dim": int(reduced.shape[1]),
                "explained_variance": round(explained, 6),
            },
            files=("features.safetensors",),
        )
        return reduced

    return art.reuse_or_build(lambda: _cached(art), build), key


def _cached(art: Artifact) -> np.ndarray:
    features = read_arrays(art, "features.safetensors")["features"]
    if not np.isfinite(features).all():
        raise ArtifactError(
            f"{art.path / 'features.safetensors'}: holds NaN or Inf values; delete {art.path} "
            f"and rerun to rebuild it"
        )
    return features
