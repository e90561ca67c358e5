"""The remote-control grammar (LabRecorder's commands) and its replies to bad lines."""

from __future__ import annotations

import pytest

from streaming.recording.recorder import RecorderConfig
from streaming.recording.recorder_control import RecorderController
from streaming.recording.recorder_remote import RemoteCommandError, parse_command, reply_to


def test_labrecorder_commands_parse() -> None:
    assert parse_command("start\n").verb == "start"
    assert parse_command("  stop ").verb == "stop"
    assert parse_command("select all").options == {"which": "all"}
    assert parse_command("select none").options == {"which": "none"}
    command = parse_command(
        r"filename {root:C:\Data\study} {template:sub-%p/%b.xdf} {participant:P 01} {run:2}"
    )
    assert command.verb == "filename"
    assert command.options == {
        "root": r"C:\Data\study",
        "template": "sub-%p/%b.xdf",
        "participant": "P 01",
        "run": "2",
    }


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("", "empty"),
        ("record", "unknown command"),
        ("select some", "select all"),
        ("start now", "no arguments"),
        ("filename", "option:value"),
        ("filename {colour:red}", "unknown option"),
        ("filename {task:a} junk", "cannot read"),
    ],
)
def test_bad_lines_say_what_is_wrong(line: str, reason: str) -> None:
    with pytest.raises(RemoteCommandError, match=reason):
        parse_command(line)


def test_replies_never_raise(tmp_path) -> None:
    controller = RecorderController(RecorderConfig(root=str(tmp_path)))
    assert reply_to(controller, "filename {participant:P01} {task:smile}") == "OK"
    assert controller.config.path_template == "bids"  # LabRecorder's default naming
    assert reply_to(controller, "filename {run:two}").startswith("ERROR: filename: run")
    assert reply_to(controller, "stop").startswith("ERROR: not recording")
    assert reply_to(controller, "\xff\xfe garbage").startswith("ERROR: unknown command")
    assert reply_to(controller, "select none") == "OK"
    assert reply_to(controller, "start").startswith("ERROR: no streams selected")


@pytest.mark.parametrize(
    "line", ["START", "Start", "STOP", "Select all", "select ALL", "FILENAME {task:x}"]
)
def test_commands_are_lowercase_as_in_labrecorder(line: str, tmp_path) -> None:
    """Issue 18, item 10: LabRecorder ignores 'START'; here it is refused, and changes nothing."""
    with pytest.raises(RemoteCommandError, match=r"lowercase|select all"):
        parse_command(line)
    controller = RecorderController(RecorderConfig(root=str(tmp_path)))
    assert reply_to(controller, line).startswith("ERROR: ")
    assert not controller.recording and not list(tmp_path.iterdir())
