"""A trained network to a detector, as pure code (no MLflow, no files but the curated input):
per-flow scores, calibration, entities, drift, evaluation, the leaderboard."""
