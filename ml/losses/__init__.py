"""Losses, one module each."""
