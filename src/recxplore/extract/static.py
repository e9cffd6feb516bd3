"""Static baseline extractor (``tfidf-svd``): TF-IDF of the item texts reduced by truncated SVD.

The "static embeddings" end of the paper's extractor-family comparison: no neural model, fitted
on the catalogue's texts only (item metadata, no interactions).
"""

from __future__ import annotations

import numpy as np


def tfidf_svd(texts: list[str], dim: int, seed: int = 0) -> np.ndarray:
    from sklearn.decomposition import TruncatedSVD
    from sklearn.feature_extraction.text import TfidfVectorizer

    tfidf = TfidfVectorizer(sublinear_tf=True, min_df=1, ngram_range=(1, 2)).fit_transform(texts)
    dim = max(1, min(dim, tfidf.shape[1] - 1, tfidf.shape[0] - 1))
    return TruncatedSVD(n_components=dim, random_state=seed).fit_transform(tfidf).astype(np.float32)
