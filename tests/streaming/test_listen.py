"""``eifer listen`` and the demo's terminal view: print what follows the contract, count the rest."""

from __future__ import annotations

import subprocess
import sys
import threading

import msgpack
import numpy as np
import zmq

from nodes.listen import TerminalView
from streaming.bus.pubsub import Publisher, decode, encode

LABELS = ["F1", "F2", "F3"]


def _muscle(**changes: object) -> dict[str, object]:
    fields: dict[str, object] = {
        "channels": LABELS,
        "emg_measured": np.array([0.2, np.nan, 0.9], np.float32),
        "emg_measured_uv": np.array([20.0, np.nan, 90.0], np.float32),
        "normalised": True,
        "emg_missing": False,
    }
    fields.update(changes)
    return {k: v for k, v in fields.items() if v is not ...}


def test_terminal_view_prints_nil_t_and_frame_and_missing_optional_fields() -> None:
    view = TerminalView()
    lines = [
        view.line(decode(encode("muscle", _muscle(), t=None, frame=None))),
        view.line(decode(encode("muscle", _muscle(normalised=..., emg_missing=...), t=2.0))),
        view.line(decode(encode("muscle", _muscle(emg_measured=np.full(3, np.nan)), frame=4))),
        view.line(decode(encode("expression", {}, t=None))),
        view.line(decode(encode("status", {"streams": {"emg": {"connected": False}}}))),
        view.line(decode(encode("status", {"streams": {"emg": {"rate_hz": None}}}))),
        view.line(decode(encode("instruction", {"text": "Smile", "remaining_s": None}))),
    ]
    assert lines[0].startswith("muscle  #-      t=- |") and "max 0.9 norm" in lines[0]
    assert "t=2.000" in lines[1] and "uV" in lines[1]
    assert "#4" in lines[2] and "max - norm" in lines[2]
    assert lines[3] == "expr    #-      |phi_video| -"
    assert "emg DOWN - Hz" in lines[4] and "emg DOWN - Hz" in lines[5]
    assert lines[6] == "instruct Smile (None, - s left)"
    assert view.invalid == {} and view.summary() == []


def test_terminal_view_counts_what_breaks_the_contract_and_says_why() -> None:
    view = TerminalView()
    no_emg = view.line(decode(encode("muscle", _muscle(emg_measured=...), frame=7)))
    assert no_emg == "muscle  #7      not shown: muscle lacks emg_measured"
    view.line(decode(encode("instruction", {"text": 3})))
    view.line(decode(encode("instruction", {"text": "\x1b[2J\x1b[31mred"})))  # terminal escapes
    unknown = view.line(decode(encode("hello", {"b": 1, "a": 2})))
    assert unknown == "hello (not a contract topic) ['a', 'b']"
    assert view.invalid == {"muscle": 1, "instruction": 1} and view.unknown == {"hello": 1}
    summary = view.summary(rejected=2)
    assert summary[0] == "rejected 2 malformed messages"
    assert "muscle: 1" in summary[1] and "instruction.text must be a string" in summary[1]
    assert summary[2] == "topics outside the contract: hello: 1"


def test_terminal_view_never_prints_control_characters() -> None:
    line = TerminalView().line(decode(encode("instruction", {"text": "\x1b[2Jgone\n\x07"})))
    assert line.startswith("instruct ?[2Jgone??")
    assert not any(ord(c) < 32 or 127 <= ord(c) < 160 for c in line)


def test_eifer_listen_survives_what_used_to_crash_it_and_counts_it() -> None:
    """Muscle without emg_measured, frame/t nil, an overflowing array: printed or counted."""
    publisher = Publisher("tcp://127.0.0.1:*")
    raw = zmq.Context.instance().socket(zmq.PUB)
    raw.setsockopt(zmq.LINGER, 0)
    port = raw.bind_to_random_port("tcp://127.0.0.1")
    overflow = msgpack.packb(
        {"schema": 1, "fields": {"x": {"dtype": "<f4", "shape": [2**32, 2**32], "data": b""}}}
    )
    stop = threading.Event()

    def publish() -> None:  # until listen has seen enough (it subscribes some time after start)
        while not stop.is_set():
            publisher.publish("muscle", _muscle(emg_measured=...), t=1.0, frame=1)
            publisher.publish("muscle", _muscle(), t=None, frame=None)
            publisher.publish("instruction", {"text": "Smile", "phase": "perform"})
            raw.send_multipart([b"muscle", overflow])
            stop.wait(0.05)

    thread = threading.Thread(target=publish, daemon=True)
    thread.start()
    try:
        result = subprocess.run(
            [sys.executable, "-m", "nodes.cli", "listen", "--seconds", "6",
             "--address", publisher.address, f"tcp://127.0.0.1:{port}"],
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
    finally:
        stop.set()
        thread.join(5)
        raw.close()
        publisher.close()
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    out = result.stdout.splitlines()
    assert any(line.startswith("muscle  #-      t=- |") for line in out), result.stdout[-2000:]
    assert any("not shown: muscle lacks emg_measured" in line for line in out)
    assert any(line.startswith("instruct Smile (perform") for line in out)
    assert "rejected" in result.stderr and "malformed messages" in result.stderr
    assert "not shown (fields against the contract): muscle:" in result.stderr


def test_extreme_numbers_are_printed_for_people() -> None:
    """Issue 18, item 12: a status rate of 1e308 is '1e+308 Hz', not a 309-digit number."""
    view = TerminalView()
    status = {
        "streams": {"emg": {"connected": True, "rate_hz": 1e308}},
        "latency_ms": {"capture_to_publish": {"p50": -1.7e308, "p99": 12.345}},
    }
    line = view.line(decode(encode("status", status)))
    assert "emg ok 1e+308 Hz" in line and "p50 -1.7e+308 ms" in line and "p99 12.3 ms" in line
    big = view.line(decode(encode("muscle", _muscle(emg_measured=np.full(3, 3e38, np.float32)))))
    assert "max 3e+38 norm" in big
    assert len(line) < 200 and len(big) < 200
    assert view.line(decode(encode("instruction", {"text": "x", "remaining_s": 999999.0})))


def test_the_summary_counts_dropped_bus_connections() -> None:
    """Issue 18, item 2: a connection libzmq dropped (an oversized message) is in the summary."""
    lines = TerminalView().summary(rejected=0, disconnects=2)
    assert lines == [
        "bus connection dropped 2 times (a message over 16 MiB, or the publisher stopped): "
        "messages queued on it were lost"
    ]


def test_eifer_listen_reads_a_curve_bus_with_its_keys_only(tmp_path) -> None:
    from streaming.bus.curve import CurveServer, write_key_pair

    for name in ("pipeline", "listener"):
        write_key_pair(tmp_path, name)
    clients = tmp_path / "clients"
    clients.mkdir()
    (clients / "listener.key").write_bytes((tmp_path / "listener.key").read_bytes())
    publisher = Publisher(
        "tcp://127.0.0.1:*", curve=CurveServer.from_files(tmp_path / "pipeline.key_secret", clients)
    )
    stop = threading.Event()

    def publish() -> None:
        while not stop.is_set():
            publisher.publish("instruction", {"text": "Smile", "phase": "perform"})
            stop.wait(0.05)

    def listen(*keys: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "nodes.cli", "listen", "--seconds", "3",
             "--address", publisher.address, *keys],
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip

    thread = threading.Thread(target=publish, daemon=True)
    thread.start()
    try:
        keyed = listen(
            "--secret-key", str(tmp_path / "listener.key_secret"),
            "--server-key", str(tmp_path / "pipeline.key"),
        )  # fmt: skip
        plain = listen()
        half = listen("--secret-key", str(tmp_path / "listener.key_secret"))
    finally:
        stop.set()
        thread.join(5)
        publisher.close()
    assert keyed.returncode == 0, keyed.stderr
    assert any(line.startswith("instruct Smile") for line in keyed.stdout.splitlines())
    assert plain.returncode == 0 and "instruct" not in plain.stdout
    assert f"handshake with {publisher.address} failed" in plain.stderr
    assert "may require CURVE" in plain.stderr
    assert half.returncode == 1 and "--secret-key needs --server-key" in half.stderr


def test_terminal_view_names_the_electrodes_to_fix_in_a_quality_line() -> None:
    fields = {
        "sample_index": 2048,
        "channels": ["F1", "F2", "F3", "F4"],
        "states": ["good", "check", "bad", "good"],
        "reasons": [[], ["mains"], ["flat"], []],
        "metrics": {"rms_uv": [3.0, 4.0, 0.0, float("nan")]},
        "mains_hz": 50.0,
    }
    line = TerminalView().line(decode(encode("quality", fields, t=12.5)))
    assert line == "quality t=12.500 2 good, 1 check, 1 bad (F3: flat; F2: mains)"
