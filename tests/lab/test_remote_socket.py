"""The remote-control socket itself: real TCP, as scripts use it (several commands in one send,
replies never read, a line too long, bytes that are not UTF-8); the recorder keeps serving."""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path

import pytest

from streaming.recording.recorder import RecorderConfig
from streaming.recording.recorder_control import RecorderController
from streaming.recording.recorder_remote import (
    MAX_LINE_BYTES,
    RemoteControlError,
    RemoteControlServer,
    exposure_warning,
)


@pytest.fixture
def served(tmp_path: Path, unique_name: str):
    # record only this test's (absent) stream: an empty recording, nothing else on the machine
    config = RecorderConfig(root=str(tmp_path / "unused"), streams=[{"name": unique_name}])
    controller = RecorderController(config)
    server = RemoteControlServer(controller, "127.0.0.1", 0).start()
    yield controller, server.address[1]
    server.close()
    controller.close()


def _replies(sock: socket.socket, count: int, timeout_s: float = 60.0) -> list[str]:
    """``count`` replies: ``OK`` (two bytes, as LabRecorder) or a newline-ended line."""
    sock.settimeout(timeout_s)
    data, replies = b"", []
    while len(replies) < count:
        data += sock.recv(4096)
        while data:
            if data.startswith(b"OK"):
                replies.append("OK")
                data = data[2:]
            elif b"\n" in data:
                line, data = data.split(b"\n", 1)
                replies.append(line.decode())
            else:
                break
    return replies


def test_a_script_drives_it_over_tcp(served, tmp_path: Path) -> None:
    controller, port = served
    assert served and controller.config.remote_control.host == "127.0.0.1"  # loopback default
    study = tmp_path / "study"
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(
            f"filename {{root:{study}}} {{participant:P01}} {{task:rest}}\nstart\n".encode()
        )
        assert _replies(sock, 2) == ["OK", "OK"]
        xdf = study / "sub-P01/ses-S001/emg/sub-P01_ses-S001_task-rest_run-001_emg.xdf"
        assert xdf.is_file() and xdf.read_bytes().startswith(b"XDF:")
        sock.sendall(b"x" * (MAX_LINE_BYTES + 10) + b"\n\xff\xfe\nstatus\n")
        long_line, garbage, status = _replies(sock, 3)
        assert long_line.startswith("ERROR: line longer than")
        assert garbage.startswith("ERROR: unknown command")
        assert xdf.name in status
    # a client that sends and leaves at once (many scripts do): the command still runs
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(b"stop\n")
    deadline = time.monotonic() + 60
    while controller.recording and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not controller.recording
    info = json.loads(xdf.with_name(xdf.stem + "_session.json").read_text())
    assert info["stop_reason"] == "stopped by remote control"
    assert info["file_name_fields"]["participant"] == "P01"


def test_a_taken_port_is_one_clear_line(served) -> None:
    controller, port = served
    with pytest.raises(RemoteControlError, match=f"port {port} on 127.0.0.1 is already in use"):
        RemoteControlServer(controller, "127.0.0.1", port)


@pytest.mark.parametrize(
    "option",
    ["{template:../../esc/x_%p_%r.xdf}", "{task:a/b}", "{participant:../../x}", "{session:..}"],
)
def test_filename_refuses_paths_out_of_the_root_when_given(served, tmp_path, option) -> None:
    """Issue 18, item 3: refused at ``filename`` (not at ``start``), and nothing changes: the
    next ``start`` records under the root with the fields given before."""
    controller, port = served
    study = tmp_path / "a" / "b" / "study"
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(f"filename {{root:{study}}} {{participant:P01}}\n".encode())
        sock.sendall(f"filename {{root:{study}}} {option} {{acquisition:X}}\n".encode())
        sock.sendall(b"start\nstop\n")
        ok, refused, started, stopped = _replies(sock, 4)
    assert ok == "OK" and started == "OK" and stopped == "OK"
    assert refused.startswith("ERROR: ") and "\n" not in refused
    assert "below the root" in refused or "no '/'" in refused, refused
    assert controller.config.participant == "P01" and controller.config.acquisition == ""
    written = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*.xdf"))
    assert written == [
        "a/b/study/sub-P01/ses-S001/emg/sub-P01_ses-S001_task-Default_run-001_emg.xdf"
    ]


def test_a_burst_of_connections_is_queued_not_stalled(tmp_path: Path, unique_name: str) -> None:
    """Issue 18, item 9: with nothing accepting yet (the server not started), the kernel queues
    up to the listen backlog: 100 connects all complete at once (with a backlog of 5, the
    seventh waited for TCP's 1 s SYN retry). Then every one is served."""
    config = RecorderConfig(root=str(tmp_path), streams=[{"name": unique_name}])
    controller = RecorderController(config)
    server = RemoteControlServer(controller, "127.0.0.1", 0)  # listening, not accepting
    clients: list[socket.socket] = []
    try:
        for _ in range(100):
            clients.append(socket.create_connection(server.address, timeout=0.9))
        server.start()
        for sock in clients:
            sock.sendall(b"status\n")
        for sock in clients:
            assert _replies(sock, 1)[0].startswith("idle:")
    finally:
        for sock in clients:
            sock.close()
        server.close()
        controller.close()


def _connect_from(source: str, port: int) -> socket.socket:
    """A client socket from ``source`` (any 127/8 address is this machine's loopback)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind((source, 0))
    sock.connect(("127.0.0.1", port))
    return sock


def _answer(sock: socket.socket, line: bytes) -> bytes:
    """What the server sends back to ``line`` before it closes or 10 s pass."""
    sock.settimeout(10)
    try:
        sock.sendall(line)
        return sock.recv(4096)
    except ConnectionResetError:
        return b""


def test_a_host_not_on_the_allow_list_is_closed_unanswered_and_named(
    tmp_path: Path, unique_name: str, caplog: pytest.LogCaptureFixture
) -> None:
    config = RecorderConfig(root=str(tmp_path / "unused"), streams=[{"name": unique_name}])
    controller = RecorderController(config)
    server = RemoteControlServer(controller, "127.0.0.1", 0, allow=["127.0.0.1"]).start()
    try:
        with _connect_from("127.0.0.2", server.address[1]) as stranger:
            refused = _answer(stranger, b"start\n")
        with _connect_from("127.0.0.1", server.address[1]) as experiment:
            answered = _answer(experiment, b"status\n")
    finally:
        server.close()
        controller.close()
    assert refused == b""  # closed, no reply, and no recording started
    assert not (tmp_path / "unused").exists()
    assert answered.endswith(b"\n") and not answered.startswith(b"ERROR")
    assert "refused a connection from 127.0.0.2 (not in remote_control.allow: 127.0.0.1)" in (
        caplog.text
    )


@pytest.mark.parametrize(
    ("allow", "source", "served"),
    [
        (["127.0.0.0/8", "::1"], "127.0.0.2", True),  # the default: this machine
        (["127.0.0.2"], "127.0.0.2", True),
        (["127.0.0.0/30"], "127.0.0.3", True),
        (["127.0.0.0/30"], "127.0.0.4", False),
        (["localhost"], "127.0.0.1", True),  # a host name, resolved at start
        (["localhost"], "127.0.0.5", False),
    ],
)
def test_the_allow_list_takes_addresses_networks_and_names(
    tmp_path: Path, unique_name: str, allow: list[str], source: str, served: bool
) -> None:
    config = RecorderConfig(root=str(tmp_path / "unused"), streams=[{"name": unique_name}])
    controller = RecorderController(config)
    server = RemoteControlServer(controller, "127.0.0.1", 0, allow=allow).start()
    try:
        with _connect_from(source, server.address[1]) as sock:
            answered = _answer(sock, b"status\n")
    finally:
        server.close()
        controller.close()
    assert bool(answered) is served


def test_a_bad_allow_list_binds_nothing_and_says_why(tmp_path: Path, unique_name: str) -> None:
    controller = RecorderController(RecorderConfig(root=str(tmp_path), streams=[]))
    try:
        with pytest.raises(RemoteControlError, match=r"'10\.0\.0\.0/33' is not an address"):
            RemoteControlServer(controller, "127.0.0.1", 0, allow=["10.0.0.0/33"])
        with pytest.raises(RemoteControlError, match=r"allow-list .* is empty"):
            RemoteControlServer(controller, "127.0.0.1", 0, allow=[])
    finally:
        controller.close()
    assert RecorderConfig().remote_control.allow == ["127.0.0.0/8", "::1"]


def test_open_to_every_host_beyond_loopback_is_warned() -> None:
    assert "from ANY host" in (exposure_warning("0.0.0.0", ["0.0.0.0/0"]) or "")
    assert exposure_warning("0.0.0.0", ["10.0.0.0/24"]) is None  # the lab's hosts, named
    assert exposure_warning("127.0.0.1", ["0.0.0.0/0"]) is None  # only this machine reaches it


def test_record_flags_set_the_remote_controls_host_and_allow_list() -> None:
    import argparse

    from nodes.recorder import add_arguments, recorder_config

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args(
        ["--remote", "--remote-host", "0.0.0.0", "--remote-allow", "10.0.0.7",
         "--remote-allow", "10.0.1.0/24"]
    )  # fmt: skip
    remote = recorder_config(args).remote_control
    assert remote.enabled and remote.host == "0.0.0.0"
    assert remote.allow == ["10.0.0.7", "10.0.1.0/24"]
