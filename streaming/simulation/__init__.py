"""Simulated acquisition: facial EMG following a movement script, with recording artefacts."""

from streaming.simulation.emg import (
    EmgSimulator,
    FaultConfig,
    HumConfig,
    ScriptConfig,
    SimulatorConfig,
    build_script,
)
from streaming.simulation.movements import (
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
    "FUNCTIONAL_MOVEMENTS",
    "EmgSimulator",
    "FaultConfig",
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
