"""Perceptual studies: protocols, trial scheduling, crash-safe HDF5 storage and analysis. No Qt here."""
