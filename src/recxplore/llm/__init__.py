"""The LLMs recxplore runs: loading (packaged aliases, folders, GGUF files, hub ids) and LoRA."""
