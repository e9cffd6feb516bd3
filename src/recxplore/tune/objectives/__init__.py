"""Tuning objectives (LoRA stages): one file each, registered in ``OBJECTIVES``."""

from recxplore.tune.objectives import cpt, said, scft, sft  # noqa: F401  (each registers itself)
