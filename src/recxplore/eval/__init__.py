"""Ranking evaluation: metrics of ranks, full and sampled candidate protocols."""
