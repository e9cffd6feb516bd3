"""Tuning objectives (LoRA stages): one file each, registered in ``OBJECTIVES``."""

from recxplore.tune.objectives import cpt, scft, sft  # noqa: F401  (each registers itself)
