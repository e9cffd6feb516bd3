"""The adapted LLM features are the item vectors (the paper's best, with MoE)."""

from recxplore.adapt.item_embedder import FeatureEmbedder
from recxplore.registry import FUSIONS

FUSIONS.register(
    "replace",
    FeatureEmbedder.build,
    requires=("features",),
    help="adapted LLM features only (the paper's best with moe)",
)
