"""Item representations consumed by the backbones (feature adaptation and ID fusion)."""
