"""Defences for skeleton classifiers (BEAT and baselines)."""
