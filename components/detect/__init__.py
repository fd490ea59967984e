"""A trained network to a detector: per-flow scores, calibration, evaluation, packaging, registry, scoring."""
