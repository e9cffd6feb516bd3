"""Training: batches, losses, the loop, and run folders."""
