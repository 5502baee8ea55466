"""Benchmarks: commands that print a table (rendering, generator and regressor training speed)."""
