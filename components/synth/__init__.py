"""Synthetic CIC-IDS2017 day files: real headers, real quirks, calibrated benign traffic, attack bursts.

``synth_frame`` gives rows with canonical column names (for model tests that skip CSV + ingest);
``write_days`` writes day files exactly as published (``flowae synth``).
"""
from components.synth.frame import synth_frame
from components.synth.specs import ATTACK_FAMILIES, ATTACKS, DAYS, AttackSpec, DaySpec
from components.synth.writer import SynthConfig, write_days

__all__ = ["ATTACKS", "ATTACK_FAMILIES", "DAYS", "AttackSpec", "DaySpec", "SynthConfig", "synth_frame", "write_days"]
