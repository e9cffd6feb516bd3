"""Fusions: how item vectors are made from IDs and adapted LLM features. One file per fusion,
each registering itself in ``FUSIONS``; a builder is
``build(n_items, hidden, inputs, make_adapter, dropout, settings) -> ItemEmbedder``, where
``make_adapter(d_in)`` builds the configured adapter."""

from recxplore.adapt.fusions import (  # noqa: F401  (each registers itself)
    add,
    align,
    concat,
    delta,
    id,
    replace,
    semantic_init,
)
