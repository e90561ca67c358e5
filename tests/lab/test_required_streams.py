"""Required streams as LabRecorder's RequiredStreams: shown missing, a start asks/refuses/records."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from streaming.recording.recorder import RecorderConfig
from streaming.recording.recorder_control import RecorderControlError, RecorderController
from streaming.recording.required_streams import (
    missing_required,
    parse_required,
    required_matches,
)


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


def test_a_host_selects_the_stream_of_that_host_only() -> None:
    """``"EMG (acq-pc)"`` is the EMG of host acq-pc: the EMG of another host is not it."""
    acq, other = _info("EMG", "acq-pc"), _info("EMG", "experiment-pc")
    assert required_matches(["EMG (acq-pc)"], acq)
    assert not required_matches(["EMG (acq-pc)"], other)
    assert missing_required(["EMG (acq-pc)"], [other]) == ["EMG (acq-pc)"]
    assert missing_required(["EMG"], [other]) == []  # a bare name: any host
    assert required_matches(["EMG (ACQ-PC)"], acq)  # host names ignore case; stream names not
    assert not required_matches(["emg (acq-pc)"], acq)


def test_a_name_with_parentheses_is_required_by_its_bare_name() -> None:
    """A stream named ``"EMG (raw)"`` required as ``"EMG (raw)"`` is that stream (it used to
    be read as stream ``EMG`` of host ``raw`` only, so a start waited for it in vain); with its
    host it is ``"EMG (raw) (acq-pc)"``."""
    raw = _info("EMG (raw)", "acq-pc")
    assert missing_required(["EMG (raw)"], [raw]) == []
    assert missing_required(["EMG (raw) (acq-pc)"], [raw]) == []
    assert missing_required(["EMG (raw) (other-pc)"], [raw]) == ["EMG (raw) (other-pc)"]
    assert parse_required("EMG (raw) (acq-pc)") == ("EMG (raw)", "acq-pc")


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


def test_idle_status_never_calls_live_streams_missing(tmp_path: Path, unique_name: str) -> None:
    """Issue 18, item 4: with the live resolver, no idle status line over 8 s names a stream
    that is up as missing (a 0.5 s look used to miss them under load)."""
    import time

    import pylsl

    names = [f"{unique_name}_{kind}" for kind in ("EMG", "Camera", "Markers", "Truth")]
    outlets = [pylsl.StreamOutlet(pylsl.StreamInfo(n, "misc", 1, 10, "float32", n)) for n in names]
    config = RecorderConfig(root=str(tmp_path), required_streams=names)
    controller = RecorderController(config)
    try:
        lines = []
        start = time.monotonic()
        while time.monotonic() - start < 8.0:
            controller.watch()
            lines.append((time.monotonic() - start, controller.status_line()))
            time.sleep(0.1)
    finally:
        controller.close()
        del outlets
    assert not [line for _, line in lines if "missing required" in line], lines
    late = [line for t, line in lines if t > 6.0]  # the resolver has listened 5 s by then
    assert late and all("looking" not in line for line in late), late
    assert all(n in late[-1] for n in names)


def test_the_record_node_idle_status_uses_the_live_resolver(tmp_path: Path, unique_name) -> None:
    """The node's idle loop (remote control, not recording) watches: its status lines, one a
    second, never call a live required stream missing."""
    import signal
    import subprocess
    import sys
    import time

    import pylsl

    outlet = pylsl.StreamOutlet(pylsl.StreamInfo(unique_name, "misc", 1, 10, "float32", "x"))
    log = tmp_path / "stderr.txt"
    argv = [sys.executable, "-m", "nodes.cli", "record", "--remote", "--remote-port", "0",
            "--root", str(tmp_path / "study"), "--require", unique_name]  # fmt: skip
    with log.open("w") as err:
        proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=err)
        try:
            deadline = time.monotonic() + 60
            while log.read_text().count("idle:") < 9:  # 9 s of status lines, at least
                assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
                time.sleep(0.2)
        finally:
            proc.send_signal(signal.SIGINT)
            proc.wait(timeout=30)
    del outlet
    lines = [line for line in log.read_text().splitlines() if line.startswith("idle:")]
    assert not [line for line in lines if "missing required" in line], lines
    assert unique_name in lines[-1]
