"""Feature extraction: an LLM (or a static baseline) embeds each item's text (module 2)."""
