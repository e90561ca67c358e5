"""The shipped session files: valid, and every ``--set`` they give is a key of that node's
config (a typo fails here, not in the lab on the day of a session)."""

from __future__ import annotations

from pathlib import Path

import pytest

from configs import config_path
from nodes.session import session_file
from nodes.session_runner import SessionConfig, SessionError, node_argv, substitute
from streaming.config import load_config, load_toml


def _config_model(command: list[str]) -> tuple[type, Path | None]:
    if command[:2] == ["node", "emg"]:
        from nodes.emg import EmgNodeConfig

        return EmgNodeConfig, config_path("nodes", "emg.toml")
    if command[:2] == ["node", "camera"]:
        from nodes.camera import CameraNodeConfig

        return CameraNodeConfig, config_path("nodes", "camera.toml")
    if command[:2] == ["node", "protocol"]:
        from streaming.acquisition.protocol import ProtocolConfig

        return ProtocolConfig, config_path("protocols", "mimics_and_muscles.toml")
    if command[0] == "pipeline":
        from streaming.pipeline.pipeline import PipelineConfig

        return PipelineConfig, None
    if command[0] == "record":
        from streaming.recording.recorder import RecorderConfig

        return RecorderConfig, config_path("nodes", "recorder.toml")
    if command[0] == "display":
        from nodes.display.server import DisplayConfig

        return DisplayConfig, config_path("nodes", "display.toml")
    raise AssertionError(f"no config model known for {command}")


@pytest.mark.parametrize("name", ["lab", "demo"])
def test_shipped_session_files_validate_every_override(name: str) -> None:
    config = SessionConfig.model_validate(load_toml(session_file(name)))
    values = {"work": "/tmp/w", "pid": "1", "demo_bundle": "b", "demo_profile": "p"}
    for node_name, node in config.nodes.items():
        argv = node_argv(node, values)
        overrides = [argv[i + 1] for i, word in enumerate(argv) if word == "--set"]
        model, default = _config_model(node.command)
        load_config(model, default, overrides)  # raises ConfigError naming a bad key
        assert node_name and argv[0] == node.command[0]


def test_overrides_become_toml_literals() -> None:
    from nodes.session_runner import NodeSpec

    node = NodeSpec(
        command=["record"],
        set={"root": 'a "b"', "run": 2, "remote_control": {"enabled": True}, "x": ["{pid}"]},
    )
    assert node_argv(node, {"pid": "7"}) == [
        "record",
        "--set", 'root="a \\"b\\""',
        "--set", "run=2",
        "--set", "remote_control.enabled=true",
        "--set", 'x=["7"]',
    ]  # fmt: skip
    with pytest.raises(SessionError, match="nope"):
        substitute("{nope}", {"pid": "1"})
