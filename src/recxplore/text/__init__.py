"""Item attributes -> the text an extractor LLM reads (module 1 of RecXplore)."""
