"""Sequential backbones: one file each, registered in ``BACKBONES`` as
``build(items: ItemEmbedder, model: ModelConfig) -> nn.Module``. A backbone never sees an LLM:
it embeds sequences and scores candidates with the item embedder it is given."""

from recxplore.backbones import bert4rec, gru4rec, sasrec  # noqa: F401  (each registers itself)
