"""Simulated acquisition: facial EMG following a movement script, with recording artefacts, and the
synthetic participant (participant/) whose face is drawn with eifer_models, hence this package's
place above eifer_models (README "Architecture")."""

from simulation.emg import (
    FAULT_CODES,
    EmgSimulator,
    FaultConfig,
    FaultWindow,
    HumConfig,
    ScriptConfig,
    SimulatorConfig,
    build_script,
)
from simulation.movements import (
    EMOTIONS,
    FUNCTIONAL_MOVEMENTS,
    LiveScript,
    MovementEvent,
    MovementLibrary,
    MovementScript,
    load_movements,
)

__all__ = [
    "EMOTIONS",
    "FAULT_CODES",
    "FUNCTIONAL_MOVEMENTS",
    "EmgSimulator",
    "FaultConfig",
    "FaultWindow",
    "HumConfig",
    "LiveScript",
    "MovementEvent",
    "MovementLibrary",
    "MovementScript",
    "ScriptConfig",
    "SimulatorConfig",
    "build_script",
    "load_movements",
]
