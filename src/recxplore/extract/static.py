"""Static baseline extractor (``tfidf-svd``): TF-IDF of the item texts reduced by truncated SVD.

The "static embeddings" end of the paper's extractor-family comparison: no neural model, fitted
on the catalogue's texts only (item metadata, no interactions). A catalogue larger than
``FIT_SAMPLE`` items has the vocabulary, the IDF weights and the SVD fitted on that many texts
drawn at random (seed 0) and is transformed ``CHUNK`` texts at a time, so memory stays bounded
by the sample, not the catalogue (a bigram vocabulary of a million texts alone is gigabytes).
"""

from __future__ import annotations

import numpy as np

FIT_SAMPLE = 100_000
CHUNK = 50_000


def tfidf_svd(
    texts: list[str], dim: int, seed: int = 0, fit_sample: int = FIT_SAMPLE
) -> np.ndarray:
    from sklearn.decomposition import TruncatedSVD
    from sklearn.feature_extraction.text import TfidfVectorizer

    vectorizer = TfidfVectorizer(sublinear_tf=True, min_df=1, ngram_range=(1, 2))
    whole = len(texts) <= fit_sample  # the whole catalogue at once
    if whole:
        fit_texts = texts
    else:
        rows = np.sort(np.random.default_rng(0).choice(len(texts), size=fit_sample, replace=False))
        fit_texts = [texts[i] for i in rows]
    tfidf = vectorizer.fit_transform(fit_texts)
    dim = max(1, min(dim, tfidf.shape[1] - 1, tfidf.shape[0] - 1))
    svd = TruncatedSVD(n_components=dim, random_state=seed)
    if whole:
        return svd.fit_transform(tfidf).astype(np.float32)
    svd.fit(tfidf)
    out = np.empty((len(texts), dim), dtype=np.float32)
    for start in range(0, len(texts), CHUNK):
        out[start : start + CHUNK] = svd.transform(
            vectorizer.transform(texts[start : start + CHUNK])
        )
    return out
