"""The synthetic participant with ground truth: one activation source drives the EMG simulator and
a rendered face (muscle -> expression map, electromechanical delay, electrodes drawn on request).
"""

from simulation.participant.model import (
    PHI_DIM,
    PHI_LABELS,
    ExpressionMap,
    FaceState,
    MuscleMapConfig,
    Participant,
    ParticipantTraits,
    load_muscle_map,
)

__all__ = [
    "PHI_DIM",
    "PHI_LABELS",
    "ExpressionMap",
    "FaceState",
    "MuscleMapConfig",
    "Participant",
    "ParticipantTraits",
    "load_muscle_map",
]
