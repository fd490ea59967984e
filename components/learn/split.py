"""The one time split: which flows train, validate, calibrate and test a detector.

Every stage asks this module (the transform fit, the trainer, calibration, evaluation, the
benchmarks and the tests), so no two stages can disagree about what is "later".

Flows are in time order (files in capture order, rows in file order). Only the *training files*
are split: their benign flows are counted in time order and cut into consecutive segments

    train | validation | calibration | test        (fractions of the benign flows)

so an attack-heavy stretch cannot starve validation or calibration. Attack flows get the segment
they fall in but are never fitted on (windows and calibration use benign flows only). Files that
are not training files (``--files`` / ``--days`` chose others) are test data as a whole. Each
segment starts strictly after the previous one ends: no flow is in two segments, and validation
and calibration come after everything the model or the transform was fitted on.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from components.jobs import SplitConfig

TRAIN, VALIDATION, CALIBRATION, TEST = 0, 1, 2, 3
ROLE_NAMES = ("train", "validation", "calibration", "test")


@dataclass(frozen=True)
class Split:
    """One role per flow (``TRAIN``..``TEST``), and the flow index where each segment starts."""

    roles: np.ndarray  # int8 [N]
    cuts: tuple[int, int, int]  # first flow of validation, calibration, test (training files)

    def mask(self, role: int) -> np.ndarray:
        return self.roles == role

    def counts(self, is_benign: np.ndarray) -> dict[str, dict[str, int]]:
        """Flows and benign flows per role, for logs and MLflow params."""
        return {name: {"flows": int((self.roles == r).sum()),
                       "benign": int(((self.roles == r) & is_benign).sum())}
                for r, name in enumerate(ROLE_NAMES)}


def split_flows(is_benign: np.ndarray, in_training_files: np.ndarray, cfg: SplitConfig) -> Split:
    """Assign every flow a role; flows must already be in time order.

    ``in_training_files`` marks the flows of the files chosen for training (all flows when no
    selection was made). The cuts fall on benign flows of those files: the first validation flow
    is the benign flow whose rank is ``train * B`` (B = their benign count), and so on.
    """
    is_benign = np.asarray(is_benign, dtype=bool)
    chosen = np.asarray(in_training_files, dtype=bool)
    if is_benign.shape != chosen.shape:
        raise ValueError("is_benign and in_training_files must have one entry per flow")
    benign_positions = np.flatnonzero(is_benign & chosen)
    n_benign = len(benign_positions)
    roles = np.full(len(is_benign), TEST, dtype=np.int8)
    if n_benign == 0:
        raise ValueError("no benign flows in the training files: training needs rows labelled BENIGN")
    bounds = np.cumsum([cfg.train, cfg.validation, cfg.calibration])
    ranks = [min(round(float(b) * n_benign), n_benign) for b in bounds]
    end = len(is_benign)
    cuts = tuple(int(benign_positions[r]) if r < n_benign else end for r in ranks)
    chosen_roles = np.searchsorted(np.asarray(cuts), np.arange(len(is_benign)), side="right")
    roles[chosen] = chosen_roles[chosen].astype(np.int8)
    return Split(roles=roles, cuts=cuts)  # type: ignore[arg-type]


def segment_runs(file_index: np.ndarray, roles: np.ndarray) -> np.ndarray:
    """Run id per flow: a new run starts wherever the file or the role changes.

    Windows never cross a run, hence never a file boundary nor a split boundary.
    """
    file_index = np.asarray(file_index)
    roles = np.asarray(roles)
    if len(file_index) == 0:
        return np.zeros(0, dtype=np.int64)
    change = np.r_[True, (file_index[1:] != file_index[:-1]) | (roles[1:] != roles[:-1])]
    return np.cumsum(change) - 1
