"""Item representations consumed by the backbones: adapters, fusions, PCA and PQ codes."""
