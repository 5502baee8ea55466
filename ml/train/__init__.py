"""Training: the shared loop, checkpoints, and one trainer per network."""
