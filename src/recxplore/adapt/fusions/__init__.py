"""Fusions: how item vectors are made from IDs and adapted LLM features. One file per fusion,
each registering itself in ``FUSIONS``; a builder is
``build(n_items, hidden, inputs, make_adapter, dropout, settings) -> ItemEmbedder``, where
``make_adapter(d_in)`` builds the configured adapter."""

from recxplore.adapt.fusions import add, align, concat, delta, id, replace  # noqa: F401
