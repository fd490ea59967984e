"""Curated flows to a trained network: features, time split, windows, model families, training."""
