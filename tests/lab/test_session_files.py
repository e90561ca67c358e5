"""The shipped session files: valid, and every ``--set`` they give is a key of that node's
config (a typo fails here, not in the lab on the day of a session)."""

from __future__ import annotations

from pathlib import Path

import pytest

from configs import config_path
from nodes.session import session_file
from nodes.session_config import SessionConfig, SessionError, node_argv, substitute
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
    values = {"work": "/tmp/w", "demo_bundle": "b", "demo_profile": "p"}
    for node_name, node in config.nodes.items():
        argv = node_argv(node, values)
        overrides = [argv[i + 1] for i, word in enumerate(argv) if word == "--set"]
        model, default = _config_model(node.command)
        load_config(model, default, overrides)  # raises ConfigError naming a bad key
        assert node_name and argv[0] == node.command[0]


def test_overrides_become_toml_literals() -> None:
    from nodes.session_config import NodeSpec

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
        substitute("{nope}", {"work": "/w"})


def _session(
    text: str, overrides: list[str] | None = None, tmp: Path | None = None
) -> SessionConfig:
    from nodes.session import load_session

    assert tmp is not None
    path = tmp / "s.toml"
    path.write_text(text)
    return load_session(path, overrides or [])


PARAMS = """
[params]
seed = 7
rate = 30.0
suffix = "x{pid}"
name = "EMG-{suffix}"

[nodes.emg]
command = ["node", "emg", "--name", "{name}"]
stream = "{name}"
[nodes.emg.set]
simulator.seed = "{seed}"
stream.name = "{name}-{seed}"
[nodes.protocol]
command = ["node", "protocol", "--speed", "{rate}"]
ports = ["tcp://127.0.0.1:{seed}"]
"""


def test_a_parameter_is_named_once_and_used_anywhere_with_its_type(tmp_path: Path) -> None:
    import os

    config = _session(PARAMS, tmp=tmp_path)
    emg = config.nodes["emg"]
    name = f"EMG-x{os.getpid()}"  # parameters use {pid} and those above them
    assert config.params["name"] == name and emg.stream == name
    assert emg.set["simulator"]["seed"] == 7  # exactly "{seed}": the parameter's integer
    assert emg.set["stream"]["name"] == f"{name}-7"  # inside text: written out
    assert config.nodes["protocol"].command[-1] == "30"  # floats as %g
    assert config.nodes["protocol"].ports == ["tcp://127.0.0.1:7"]
    # --set params.X changes every use
    again = _session(PARAMS, ["params.seed=9", 'params.suffix="y"'], tmp=tmp_path)
    assert again.nodes["emg"].set == {"simulator": {"seed": 9}, "stream": {"name": "EMG-y-9"}}
    assert node_argv(again.nodes["emg"], {})[:4] == ["node", "emg", "--name", "EMG-y"]


def test_a_node_started_by_the_first_frame_needs_a_bus_to_watch(tmp_path: Path) -> None:
    from streaming.config import ConfigError

    text = '[nodes.protocol]\ncommand = ["node", "protocol"]\nstart = "first_frame"\n'
    with pytest.raises(ConfigError, match=r"needs view\.bus"):
        _session(text, tmp=tmp_path)
    assert _session(text + '[view]\nbus = ["tcp://127.0.0.1:5556"]\n', tmp=tmp_path).view.every


def test_two_nodes_binding_one_port_are_refused_before_anything_starts(tmp_path: Path) -> None:
    from nodes.session_runner import check_before_start

    text = """
[nodes.pipeline]
command = ["pipeline"]
ports = ["tcp://127.0.0.1:45123"]
[nodes.display]
command = ["display"]
ports = [45123]
"""
    with pytest.raises(SessionError, match="pipeline and display would both bind port 45123"):
        check_before_start(_session(text, tmp=tmp_path))
