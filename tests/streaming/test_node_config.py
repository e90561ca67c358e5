"""One way to load every command's config: shipped file or --config, --set, typed flags."""

from __future__ import annotations

import argparse
import importlib
import re
from pathlib import Path

import pytest

from nodes.cli import COMMANDS
from nodes.common import load_node_config
from streaming.config import ConfigError

OPTION_COMMANDS = ["listen", "streams", "export", "demo"]


def _parser(words: tuple[str, ...]) -> argparse.ArgumentParser:
    module = importlib.import_module(COMMANDS[words][0])
    parser = argparse.ArgumentParser(prog="eifer " + " ".join(words))
    module.add_arguments(parser)
    return parser


def _example(parser: argparse.ArgumentParser) -> str:
    text = next(a.help for a in parser._actions if a.dest == "overrides")
    match = re.search(r"e\.g\. --set (\S+)", text or "")
    assert match, f"{parser.prog}: --set help has no example: {text!r}"
    return match.group(1)


# sub-commands that read no config of their own (``train report`` reads the run's config)
NO_CONFIG = {"eifer train report"}


def _leaf_parsers(parser: argparse.ArgumentParser) -> list[argparse.ArgumentParser]:
    """The parser itself, or each of its sub-commands' parsers (``eifer train dataset`` ...)."""
    subparsers = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not subparsers:
        return [parser]
    return [leaf for sub in subparsers for p in sub.choices.values() for leaf in _leaf_parsers(p)]


@pytest.mark.parametrize("words", list(COMMANDS))
def test_every_command_takes_config_and_set(words: tuple[str, ...]) -> None:
    for parser in _leaf_parsers(_parser(words)):
        if parser.prog in NO_CONFIG:
            continue
        options = {s for a in parser._actions for s in a.option_strings}
        assert {"--config", "--set"} <= options, parser.prog


def test_the_set_examples_are_valid_for_their_command() -> None:
    from configs import config_path
    from nodes.build_engine import BuildEngineConfig
    from nodes.camera import CameraNodeConfig
    from nodes.display.server import DisplayConfig
    from nodes.emg import DEFAULT_CONFIG, EmgNodeConfig
    from streaming.acquisition.protocol import ProtocolConfig
    from streaming.pipeline.pipeline import PipelineConfig
    from streaming.recording.recorder import RecorderConfig
    from streaming.recording.replay import ReplayConfig

    models = {
        ("node", "emg"): (EmgNodeConfig, DEFAULT_CONFIG, []),
        ("node", "camera"): (CameraNodeConfig, config_path("nodes", "camera.toml"), []),
        ("replay",): (ReplayConfig, config_path("nodes", "replay.toml"), ["x.xdf"]),
        ("node", "protocol"): (
            ProtocolConfig, config_path("protocols", "mimics_and_muscles.toml"), [],
        ),
        ("display",): (DisplayConfig, config_path("nodes", "display.toml"), []),
        ("pipeline",): (PipelineConfig, None, []),
        ("record",): (RecorderConfig, None, []),
        ("build-engine",): (BuildEngineConfig, None, ["bundle"]),
    }  # fmt: skip
    for words, (cls, default, positional) in models.items():
        parser = _parser(words)
        args = parser.parse_args([*positional, "--set", _example(parser)])
        load_node_config(cls, args, default=default)
    from nodes.common import load_option_config

    for word in OPTION_COMMANDS:
        parser = _parser((word,))
        positional = ["S", "--to", "npz"] if word == "export" else []
        load_option_config(parser.parse_args([*positional, "--set", _example(parser)]))
    flame = _parser(("flame", "convert"))
    args = flame.parse_args(
        ["a.pkl", "b.npz", "--set", _example(flame), "--set", 'eyelids=["l", "r"]']
    )
    load_option_config(args)
    assert args.masks == Path("FLAME_masks.pkl") and args.eyelids == (Path("l"), Path("r"))


def test_typed_flags_reach_the_config_exactly_and_win_over_set() -> None:
    from nodes.emg import config_from_args

    parser = _parser(("node", "emg"))
    name = 'E"MG \\ 01'  # quotes and backslashes: no TOML string is built from it
    args = parser.parse_args(
        ["--name", name, "--set", 'stream.name="other"', "--scheme", "kuramoto"]
    )
    cfg = config_from_args(args)
    assert cfg.stream.name == name and cfg.simulator.scheme == "kuramoto"
    assert cfg.stream.truth_stream_name == f"{name}-truth"


def test_errors_name_the_set_or_flag_at_fault_else_the_file(tmp_path: Path) -> None:
    from nodes.camera import config_from_args

    parser = _parser(("node", "camera"))
    with pytest.raises(ConfigError, match=r"^--set rate_hz=-1: .*\n  rate_hz"):
        config_from_args(parser.parse_args(["--set", "rate_hz=-1"]))
    with pytest.raises(ConfigError, match=r"^--set nope=1: .*\n  nope: Extra inputs"):
        config_from_args(parser.parse_args(["--set", "nope=1"]))
    from nodes.replay import load_replay_config

    with pytest.raises(SystemExit):  # a negative offset is refused by argparse already
        _parser(("replay",)).parse_args(["x.xdf", "--start", "-1"])
    replay = _parser(("replay",)).parse_args(["x.xdf", "--set", "start_s=-1"])
    with pytest.raises(ConfigError, match=r"^--set start_s=-1: .*\n  start_s"):
        load_replay_config(replay)
    bad = tmp_path / "camera.toml"
    bad.write_text("rate_hz = 0\n")
    with pytest.raises(ConfigError, match=rf"^{re.escape(str(bad))}: .*\n  rate_hz"):
        config_from_args(parser.parse_args(["--config", str(bad), "--name", "X"]))


def test_option_commands_read_a_config_file_and_typed_options_win(tmp_path: Path) -> None:
    from nodes.common import load_option_config

    path = tmp_path / "listen.toml"
    path.write_text('every = 5\nseconds = 2.5\ntopics = ["status"]\n')
    parser = _parser(("listen",))
    args = parser.parse_args(["--config", str(path), "--every", "7"])
    load_option_config(args)
    assert (args.every, args.seconds, args.topics) == (7, 2.5, ["status"])
    args = parser.parse_args([])
    load_option_config(args)  # nothing given: the options' own defaults
    assert args.every == 1 and args.seconds is None and "muscle" in args.topics
    with pytest.raises(ConfigError, match=r"^--set every=x: "):
        load_option_config(parser.parse_args(["--set", "every=x"]))
    demo = _parser(("demo",)).parse_args(["--set", "no_display=true"])
    load_option_config(demo)
    assert demo.no_display is True and demo.display_port is None  # demo.toml's default applies
    from nodes.demo import session_overrides

    assert session_overrides(demo) == ["nodes.display.enabled=false"]
