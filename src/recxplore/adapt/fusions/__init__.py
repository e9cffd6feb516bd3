"""Fusions: how item vectors are made from IDs and adapted LLM features. One file per fusion,
each registering itself in ``FUSIONS``; a builder is
``build(n_items, hidden, inputs, make_adapter, dropout, settings) -> ItemEmbedder``, where
``make_adapter(d_in)`` builds the configured adapter. ``WITHOUT_ADAPTER`` names the fusions
that read the features without an adapter: their runs neither build nor key one."""

from recxplore.adapt.fusions import (  # noqa: F401  (each registers itself)
    add,
    align,
    alphafuse,
    concat,
    delta,
    id,
    llmesr,
    reconstruct,
    replace,
    semantic_init,
)

# llmesr: its own adapter
WITHOUT_ADAPTER = frozenset({"semantic_init", "alphafuse", "reconstruct", "llmesr"})
