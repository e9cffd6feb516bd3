"""recxplore: LLM item features for sequential recommenders (RecXplore, arXiv 2509.14979)."""

__version__ = "0.1.0"
