"""Required streams as LabRecorder's RequiredStreams: shown missing, a start asks/refuses/records."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from streaming.recorder import RecorderConfig
from streaming.recorder_control import RecorderControlError, RecorderController
from streaming.required_streams import missing_required, parse_required


def _info(name: str, host: str) -> SimpleNamespace:
    return SimpleNamespace(name=lambda: name, hostname=lambda: host)


def test_labrecorder_labels() -> None:
    assert parse_required("BioSemi (LAB-PC1)") == ("BioSemi", "LAB-PC1")
    assert parse_required("EMG") == ("EMG", None)
    visible = [_info("EMG", "lab1"), _info("Camera", "lab2")]
    assert missing_required(["EMG (lab1)", "Camera", "EMG (lab9)", "Eyes"], visible) == [
        "EMG (lab9)",
        "Eyes",
    ]


def _controller(tmp_path: Path, policy: str, unique_name: str, ask=None) -> RecorderController:
    config = RecorderConfig(
        root=str(tmp_path),
        session="s",
        required_streams=[unique_name],
        missing_required=policy,
        required_wait_s=0.0,
    )
    return RecorderController(config, ask=ask)


def test_start_without_a_required_stream_is_refused(tmp_path: Path, unique_name: str) -> None:
    controller = _controller(tmp_path, "refuse", unique_name)
    with pytest.raises(RecorderControlError, match=f"required streams missing: {unique_name}"):
        controller.start()
    assert f"missing required: {unique_name}" in controller.status_line()
    assert not (tmp_path / "s").exists()  # nothing was created


def test_ask_without_anyone_to_ask_refuses_and_a_no_refuses(
    tmp_path: Path, unique_name: str
) -> None:
    with pytest.raises(RecorderControlError, match="no terminal to ask"):
        _controller(tmp_path, "ask", unique_name).start()
    questions: list[str] = []
    controller = _controller(
        tmp_path, "ask", unique_name, ask=lambda q: questions.append(q) or False
    )
    with pytest.raises(RecorderControlError, match="not started"):
        controller.start()
    assert unique_name in questions[0]


def test_record_anyway_notes_what_was_missing(tmp_path: Path, unique_name: str) -> None:
    controller = _controller(tmp_path, "record", unique_name)
    xdf = controller.start()
    assert controller.close() == xdf
    info = json.loads((xdf.parent / "session.json").read_text())
    assert info["required_streams_missing"] == [unique_name]
