"""Durations, counts and ports are checked when the command line is parsed (issue 18, item 7),
and an unknown command is named (item 8): one error line, nothing started or written."""

from __future__ import annotations

from pathlib import Path

import pytest

from nodes.cli import main


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["record", "--duration", "-5"], "a duration must be above 0"),
        (["record", "--duration", "0"], "a duration must be above 0"),
        (["record", "--duration", "nan"], "is not a number of seconds"),
        (["record", "--remote-port", "99999"], "port 99999 is not in 0..65535"),
        (["record", "--run", "-1"], "must be 0 or more"),
        (["node", "emg", "--duration", "-1"], "a duration must be above 0"),
        (["node", "camera", "--duration", "-1"], "a duration must be above 0"),
        (["listen", "--seconds", "-1"], "a duration must be above 0"),
        (["listen", "--every", "0"], "must be 1 or more"),
        (["check", "--seconds", "0"], "a duration must be above 0"),
        (["session", "--seconds", "-3"], "a duration must be above 0"),
        (["streams", "--timeout", "-1"], "a duration must be above 0"),
        (["replay", "x.xdf", "--start", "-2"], "must be 0 or more"),
        (["pipeline", "--frames", "0"], "must be 1 or more"),
        (["synth", "--out", "x", "--participants", "0"], "must be 1 or more"),
        (["synth", "--out", "x", "--minutes", "-1"], "must be above 0"),
        (["synth", "--out", "x", "--jobs", "0"], "must be 1 or more"),
        (["export", "x", "--to", "bids", "--run", "0"], "must be 1 or more"),
        (["demo", "--display-port", "70000"], "port 70000 is not in 0..65535"),
        (["demo", "--seconds", "-1"], "a duration must be above 0"),
        (["demo", "--camera-rate", "0"], "must be above 0"),
    ],
)
def test_bad_numbers_are_refused_at_parse_time(
    argv: list[str], message: str, tmp_path: Path, capsys, monkeypatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as done:
        main([*argv, "--log-level", "WARNING"])
    assert done.value.code == 2
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if "error" in line]
    assert len(errors) == 1 and message in errors[0], err
    assert errors[0].startswith("eifer ") and ": error: argument --" in errors[0]
    assert list(tmp_path.iterdir()) == []  # nothing was recorded or created


def test_a_session_file_port_out_of_range_is_refused() -> None:
    from nodes.session_config import SessionConfig
    from streaming.config import ConfigError, validate

    nodes = {"rec": {"command": ["record"], "ports": [99999]}}
    with pytest.raises(ConfigError, match=r"nodes\.rec\.ports\.0.*65535.*99999"):
        validate(SessionConfig, {"nodes": nodes}, "lab.toml")


@pytest.mark.parametrize(
    ("argv", "named"),
    [(["rm", "-rf", "/x"], "unknown command 'rm'"), (["node", "emgg"], "'node emgg'; use one of")],
)
def test_an_unknown_command_is_named_on_the_last_line(argv, named, capsys) -> None:
    """Issue 18, item 8: the cause comes last (a session shows a node's last error line)."""
    from nodes.session_runner import last_error_line

    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.strip().splitlines()[-1].startswith("eifer: error: ") and named in err, err
    assert named in last_error_line(err)


def test_a_session_node_with_a_bad_command_is_refused_with_its_cause() -> None:
    from nodes.session_config import SessionConfig
    from streaming.config import ConfigError, validate

    nodes = {"emg": {"command": ["node", "emgg", "--source", "lsl"]}}
    with pytest.raises(ConfigError, match=r"unknown command 'node emgg'; use one of node emg"):
        validate(SessionConfig, {"nodes": nodes}, "lab.toml")


def test_a_node_config_error_is_reported_with_its_problem_lines(tmp_path: Path) -> None:
    """A session shows a node's config error with what is wrong, not only its first line."""
    import subprocess
    import sys

    from nodes.session_runner import last_error_line

    done = subprocess.run(
        [sys.executable, "-m", "nodes.cli", "record", "--root", str(tmp_path),
         "--set", 'path_template="../../x%p"'],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 1, done.stderr
    line = last_error_line(done.stderr)
    assert line.startswith("eifer record: error: ") and "below the root" in line, line
    assert list(tmp_path.iterdir()) == []
