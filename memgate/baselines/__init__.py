"""Baselines: the model, their files, reading them at a target commit, and the race-safe commit."""
