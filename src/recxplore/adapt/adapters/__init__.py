"""Adapters: frozen item features (rows, d_in) -> item vectors (rows, hidden), trained jointly
with the backbone. One file per adapter, each registering itself in ``ADAPTERS`` with its own
settings; a builder is ``build(d_in, d_out, settings, inputs) -> nn.Module``."""

from recxplore.adapt.adapters import linear, mlp, moe, pq  # noqa: F401  (each registers itself)
