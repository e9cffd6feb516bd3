"""Offline dimensionality reduction of the stored LLM features (PCA, cached with its store),
and centring without PCA (``adapt.center``).

Fitted on all items (the paper's practice) or only on items that occur in training sequences
(``adapt.pca_fit=train``, so nothing about validation/test-only items shapes the projection).
Item text is metadata, not interactions, so either choice is leak-free for the ranking targets;
``train`` is the stricter one. Row 0 (padding) stays zero.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from safetensors.numpy import save_file

from recxplore.cache import Artifact, read_arrays, stage_key
from recxplore.config import AdaptConfig
from recxplore.data.dataset import Dataset
from recxplore.data.split import train_sequences
from recxplore.errors import ArtifactError


def pca_settings(cfg: AdaptConfig) -> dict:
    return {"pca": cfg.pca, "whiten": cfg.pca_whiten, "fit": cfg.pca_fit}


def fit_rows(ds: Dataset, fit: str) -> np.ndarray:
    if fit == "all":
        return np.arange(1, ds.n_items + 1)
    seen = np.unique(np.concatenate([s for s in train_sequences(ds) if len(s)]))
    return seen[seen > 0]


def pca_transform(
    matrix: np.ndarray, rows: np.ndarray, components: float, whiten: bool, seed: int = 0
) -> tuple[np.ndarray, float]:
    """(reduced matrix with row 0 zero, explained variance share)."""
    from sklearn.decomposition import PCA

    fit = matrix[rows]
    n: float = (
        int(min(components, fit.shape[0], fit.shape[1])) if components >= 1 else float(components)
    )
    pca = PCA(n_components=n, whiten=whiten, svd_solver="full", random_state=seed).fit(fit)
    out = pca.transform(matrix).astype(np.float32)
    out[0] = 0.0
    return out, float(pca.explained_variance_ratio_.sum())


def centred(matrix: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """``matrix`` less the mean of its ``rows``; row 0 (padding) stays zero."""
    out = (matrix - matrix[rows].mean(axis=0, dtype=np.float64)).astype(np.float32)
    out[0] = 0.0
    return out


def reduced_features(
    load: Callable[[], np.ndarray],
    store_key: str,
    ds: Dataset,
    dataset_key: str,
    cfg: AdaptConfig,
    cache_root,
) -> tuple[np.ndarray, str]:
    """The PCA-reduced (or unchanged, or centred) feature matrix and its artifact key; ``load``
    reads the full store, which is needed only when the reduction is not cached."""
    if cfg.pca is None:
        if not cfg.center:
            return load(), store_key
        # cheap enough not to cache; the key says the matrix is not the store's
        key = stage_key("center", {"fit": cfg.pca_fit}, (store_key, dataset_key))
        return centred(load(), fit_rows(ds, cfg.pca_fit)), key
    settings = pca_settings(cfg)
    key = stage_key("reduce", settings, (store_key, dataset_key))
    art = Artifact(cache_root, "reduced", key)

    def build() -> np.ndarray:
        assert cfg.pca is not None
        reduced, explained = pca_transform(
            load(), fit_rows(ds, cfg.pca_fit), cfg.pca, cfg.pca_whiten
        )
        folder = art.begin(fresh=True)
        save_file({"features": reduced}, str(folder / "features.safetensors"))
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
