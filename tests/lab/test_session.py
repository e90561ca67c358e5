"""``eifer session`` with simulated sources, its recorder driven like LabRecorder over the
remote-control socket, and SIGTERM leaving no process behind.

The remote-control client here is written from LabRecorder's documentation (README, ``RCSPort``
22345, ``src/tcpinterface.cpp``): a TCP connection, one ``\\n``-terminated command per line, each
answered ``OK``; nothing of this project's code is used to speak the protocol. LSL discovery is
isolated to this test by an LSL ``SessionID`` of its own (other tests' streams stay invisible).
"""

from __future__ import annotations

import importlib.util
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import psutil
import pytest

REPO = Path(__file__).resolve().parents[2]
STARTUP_S = 240.0  # a loaded 2-core machine: imports, LSL discovery, encoders
pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Session:
    """``eifer session`` in a child process; its output collected all along."""

    def __init__(self, config: Path, lsl_cfg: Path) -> None:
        env = {**os.environ, "PYTHONUNBUFFERED": "1", "LSLAPICFG": str(lsl_cfg)}
        env["TMPDIR"] = str(lsl_cfg.parent)  # its work folder (logs kept on failure) stays here
        self.process = subprocess.Popen(
            [sys.executable, "-m", "nodes.cli", "session", "--config", str(config)],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=REPO, env=env,
        )  # fmt: skip
        self.lines: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line)

    def wait_for(self, pattern: str, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if any(re.search(pattern, line) for line in self.lines):
                return
            if self.process.poll() is not None:
                break
            time.sleep(0.2)
        pytest.fail(f"no line matching {pattern!r}; session said:\n{''.join(self.lines)}")

    def descendants(self) -> list[psutil.Process]:
        return psutil.Process(self.process.pid).children(recursive=True)

    def terminate(self, timeout_s: float = 120.0) -> int:
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout_s)


class LabRecorderClient:
    """What an experiment script does (LabRecorder README / tcpinterface.cpp)."""

    def __init__(self, port: int, timeout_s: float = 60.0) -> None:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                self.sock = socket.create_connection(("127.0.0.1", port), timeout=120)
                return
            except ConnectionRefusedError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)

    def send(self, command: str) -> str:
        self.sock.sendall(command.encode() + b"\n")
        reply = b""
        while reply != b"OK" and not reply.endswith(b"\n"):
            chunk = self.sock.recv(1)
            if not chunk:
                break
            reply += chunk
        return reply.decode()

    def close(self) -> None:
        self.sock.close()


def _session_file(tmp_path: Path, tag: str, port: int) -> Path:
    emg, camera = f"EMG-{tag}", f"Camera-{tag}"
    unused_root = tmp_path / "unused"
    path = tmp_path / "lab-test.toml"
    path.write_text(f"""
name = "lab-test"
status_interval_s = 2.0

[nodes.emg]
command = ["node", "emg", "--name", "{emg}"]
stream = "{emg}"
start_timeout_s = {STARTUP_S}
[nodes.emg.set]
simulator.script.kind = "rest"

[nodes.camera]
command = ["node", "camera", "--source", "synthetic", "--name", "{camera}", "--size", "160x120"]
stream = "{camera}"
start_timeout_s = {STARTUP_S}
[nodes.camera.set]
rate_hz = 10.0

[nodes.recorder]
command = ["record", "--remote", "--remote-port", "{port}", "--quiet"]
records = true
ports = [{port}]
[nodes.recorder.set]
root = "{unused_root}"
required_streams = ["{emg}", "{camera}"]
missing_required = "refuse"
""")
    return path


def _lsl_cfg(tmp_path: Path) -> Path:
    path = tmp_path / "lsl_api.cfg"
    path.write_text(
        "[multicast]\nResolveScope = machine\n\n[ports]\nIPv6 = disable\n\n"
        f"[lab]\nSessionID = eifer-lab-{uuid.uuid4().hex}\n\n[log]\nlevel = -2\n"
    )
    return path


@pytest.fixture
def session(tmp_path: Path):
    port = _free_port()
    tag = uuid.uuid4().hex[:8]
    running = Session(_session_file(tmp_path, tag, port), _lsl_cfg(tmp_path))
    running.port, running.tag = port, tag  # type: ignore[attr-defined]
    yield running
    if running.process.poll() is None:
        running.process.kill()
        running.process.wait(30)


def test_remote_control_records_to_the_bids_path_and_sigterm_leaves_nothing(
    session: Session, tmp_path: Path
) -> None:
    import pyxdf

    session.wait_for(r"camera: stream .* is up", STARTUP_S)
    session.wait_for(r"emg: stream .* is up", STARTUP_S)
    client = LabRecorderClient(session.port)  # type: ignore[attr-defined]
    study = tmp_path / "study"
    assert client.send("select all") == "OK"
    assert (
        client.send(
            f"filename {{root:{study}}} {{participant:P07}} {{session:S2}} {{task:smile}} "
            "{modality:emg}"
        )
        == "OK"
    )
    assert client.send("start") == "OK"
    first = study / "sub-P07/ses-S2/emg/sub-P07_ses-S2_task-smile_run-001_emg.xdf"
    assert first.is_file()  # LabRecorder: after start's OK the file exists
    assert client.send("start").startswith("ERROR: already recording")
    # the session's one status line shows the recorder's own state
    session.wait_for(r"recorder: running, sub-P07_ses-S2_task-smile_run-001_emg\.xdf: ", 60)
    time.sleep(2.0)
    assert client.send("stop") == "OK"
    # the next start takes the next free run, as LabRecorder's counter does
    assert client.send("start") == "OK"
    time.sleep(2.0)
    assert client.send("stop") == "OK"
    assert client.send("frobnicate").startswith("ERROR: unknown command")
    client.close()

    second = first.with_name("sub-P07_ses-S2_task-smile_run-002_emg.xdf")
    assert second.is_file()
    streams, _ = pyxdf.load_xdf(str(first))
    by_name = {s["info"]["name"][0]: s for s in streams}
    tag = session.tag  # type: ignore[attr-defined]
    assert {f"EMG-{tag}", f"Camera-{tag}"} <= set(by_name)
    emg = by_name[f"EMG-{tag}"]
    assert emg["time_series"].shape[0] > 4096  # well over a second of 4096 Hz EMG
    assert emg["footer"]["info"]["sample_count"][0] == str(emg["time_series"].shape[0])
    video = first.with_name(f"sub-P07_ses-S2_task-smile_run-001_emg_Camera-{tag}.mkv")
    assert video.is_file() and video.stat().st_size > 0
    assert first.with_name("sub-P07_ses-S2_task-smile_run-001_emg_session.json").is_file()
    # after the session: BIDS from the run's own LabRecorder fields (no labels given)
    if importlib.util.find_spec("mne_bids") and importlib.util.find_spec("edfio"):
        from streaming.recording.export_bids import export_bids

        written, left_out = export_bids(first, tmp_path / "bids", emg=f"EMG-{tag}")
        assert tmp_path / "bids/sub-P07/ses-S2/emg/sub-P07_ses-S2_task-smile_run-1_emg.bdf" in (
            written
        )
        assert any(f"Camera-{tag}" in line for line in left_out)

    nodes = session.descendants()
    assert len(nodes) >= 3  # emg, camera, recorder
    assert session.terminate() == 0
    _gone, alive = psutil.wait_procs(nodes, timeout=30)
    assert not alive, f"left running after SIGTERM: {[p.pid for p in alive]}"
    assert "session stopped: every node ended" in "".join(session.lines)


def test_sigterm_while_recording_saves_the_file_and_leaves_no_process(
    session: Session, tmp_path: Path
) -> None:
    import pyxdf

    session.wait_for(r"emg: stream .* is up", STARTUP_S)
    session.wait_for(r"camera: stream .* is up", STARTUP_S)
    client = LabRecorderClient(session.port)  # type: ignore[attr-defined]
    study = tmp_path / "study"
    client.send(f"filename {{root:{study}}} {{template:exp%n/block_%b.xdf}} {{task:T1}}")
    assert client.send("start") == "OK"
    time.sleep(3.0)
    nodes = session.descendants()
    assert session.terminate() == 0
    _gone, alive = psutil.wait_procs(nodes, timeout=30)
    assert not alive, f"left running after SIGTERM: {[p.pid for p in alive]}"
    client.close()
    path = study / "exp001" / "block_T1.xdf"
    streams, _ = pyxdf.load_xdf(str(path))
    emg = next(s for s in streams if s["info"]["type"][0] == "EMG")
    assert emg["time_series"].shape[0] > 4096
    assert "footer" in emg  # closed cleanly: drained, footers written


def _run_session(tmp_path: Path, text: str, timeout_s: float = STARTUP_S) -> tuple[int, str]:
    path = tmp_path / "broken.toml"
    path.write_text(text)
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "LSLAPICFG": str(_lsl_cfg(tmp_path))}
    env["TMPDIR"] = str(tmp_path)  # the failed session keeps its logs: here, not in /tmp
    process = subprocess.Popen(
        [sys.executable, "-m", "nodes.cli", "session", "--config", str(path)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=REPO, env=env,
    )  # fmt: skip
    output, _ = process.communicate(timeout=timeout_s)
    return process.returncode, output


def test_missing_hardware_is_one_line_per_node_never_a_hang(tmp_path: Path) -> None:
    tag = uuid.uuid4().hex[:8]
    code, output = _run_session(
        tmp_path,
        f"""
[nodes.emg]
command = ["node", "emg", "--name", "EMG-{tag}"]
[nodes.camera]
command = ["node", "camera", "--source", "realsense", "--name", "Camera-{tag}"]
""",
    )
    assert code == 1
    assert re.search(r"camera stopped \(exit 1\): .*no RealSense camera", output), output
    assert "eifer session: error:" in output

    code, output = _run_session(
        tmp_path,
        f"""
[nodes.amplifier]
command = ["node", "emg", "--source", "lsl"]
stream = "EMG-{tag}"
start_timeout_s = 5.0
hint = "is the amplifier on?"
[nodes.amplifier.set]
stream.name = "EMG-{tag}"
bridge.name = "NoAmplifier-{tag}"
bridge.timeout_s = 600.0
""",
    )
    assert code == 1
    assert f"amplifier: no LSL stream 'EMG-{tag}' after 5 s (is the amplifier on?)" in output
