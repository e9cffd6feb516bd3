"""Product-quantisation codes for the VQ-Rec-style adapter, computed offline with faiss.

An OPQ rotation is learned, then each of ``M`` sub-vectors is quantised against its own
codebook of 256 centroids; an item becomes M code ids. Cached by the features they came from.
"""

from __future__ import annotations

import numpy as np
from safetensors.numpy import save_file

from recxplore.cache import Artifact, read_arrays, stage_key
from recxplore.errors import ConfigError

CODES = 256  # 8-bit codes: the VQ-Rec setting


def opq_codes(features: np.ndarray, subvectors: int, seed: int = 0) -> np.ndarray:
    """(rows, M) int64 codes; row 0 (padding) is coded too but never used."""
    import faiss

    items = np.ascontiguousarray(features[1:], dtype=np.float32)
    n, d = items.shape
    if d % subvectors:
        raise ConfigError(
            [
                f"adapt.pq_subvectors: must divide the feature size {d}; got "
                f"{subvectors} (choose a divisor, or change adapt.pca)"
            ]
        )
    if n < CODES:
        raise ConfigError(
            [
                f"adapt.adapter: pq needs at least {CODES} items to train its "
                f"codebooks; this dataset has {n}; choose linear, mlp or moe"
            ]
        )
    opq = faiss.OPQMatrix(d, subvectors)
    opq.niter = 25
    opq.train(items)
    rotated = opq.apply(items)
    pq = faiss.ProductQuantizer(d, subvectors, 8)
    pq.cp.seed = seed
    pq.train(rotated)
    codes = pq.compute_codes(rotated).astype(np.int64)  # (n, M): one byte per code at 8 bits
    return np.vstack([np.zeros((1, subvectors), np.int64), codes])


def cached_codes(
    features: np.ndarray, features_key: str, subvectors: int, cache_root, seed: int = 0
) -> np.ndarray:
    """The PQ codes of ``features``, cached; ``seed`` draws the codebooks (the run's seed, so
    their variance is inside a study's seeds)."""
    art = Artifact(
        cache_root,
        "pq-codes",
        stage_key("pq", {"M": subvectors, "K": CODES, "seed": seed}, (features_key,)),
    )

    def build() -> np.ndarray:
        codes = opq_codes(features, subvectors, seed)
        folder = art.begin(fresh=True)
        save_file({"codes": np.ascontiguousarray(codes)}, str(folder / "codes.safetensors"))
        art.publish(
            {
                "features": features_key,
                "subvectors": subvectors,
                "codes_per_subvector": CODES,
                "rows": int(codes.shape[0]),
            },
            files=("codes.safetensors",),
        )
        return codes

    return art.reuse_or_build(lambda: read_arrays(art, "codes.safetensors")["codes"], build)
