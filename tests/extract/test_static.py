"""The static extractor fits a large catalogue on a bounded sample and transforms it in chunks."""

import numpy as np
from sklearn.decomposition import TruncatedSVD
from sklearn.feature_extraction.text import TfidfVectorizer

from recxplore.extract import static
from recxplore.extract.static import tfidf_svd


def texts(n: int) -> list[str]:
    rng = np.random.default_rng(1)
    words = [f"w{i}" for i in range(40)]
    return [" ".join(rng.choice(words, size=5)) for _ in range(n)]


def test_a_small_catalogue_is_fitted_whole():
    corpus = texts(60)
    tfidf = TfidfVectorizer(sublinear_tf=True, ngram_range=(1, 2)).fit_transform(corpus)
    want = TruncatedSVD(n_components=8, random_state=0).fit_transform(tfidf)
    np.testing.assert_allclose(tfidf_svd(corpus, 8), want, rtol=1e-4, atol=1e-5)


def test_a_large_catalogue_is_fitted_on_a_sample_and_transformed_in_chunks(monkeypatch):
    monkeypatch.setattr(static, "CHUNK", 7)
    corpus = texts(90)
    rows = np.sort(np.random.default_rng(0).choice(90, size=30, replace=False))
    vectorizer = TfidfVectorizer(sublinear_tf=True, ngram_range=(1, 2))
    sample = vectorizer.fit_transform([corpus[i] for i in rows])
    svd = TruncatedSVD(n_components=8, random_state=0).fit(sample)
    want = svd.transform(vectorizer.transform(corpus))
    got = tfidf_svd(corpus, 8, fit_sample=30)
    assert got.shape == (90, 8) and got.dtype == np.float32
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)
