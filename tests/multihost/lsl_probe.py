"""Small LSL programs the rig runs inside its hosts (``python lsl_probe.py COMMAND ...``).

- ``outlet NAME SECONDS [TYPE]``: a 100 Hz stream whose samples are the sender's ``local_clock()``
  (type ``Probe`` unless given);
- ``resolve SECONDS``: the names of every stream visible from this host, as JSON;
- ``hosts SECONDS``: ``[name, hostname, source_id]`` of every stream visible, as JSON;
- ``offsets NAME SECONDS``: ``time_correction`` of stream NAME every 0.5 s, as JSON
  ``{"t": [...], "offset": [...]}`` (t in this host's clock);
- ``remote HOST PORT LINE...``: LabRecorder's remote control as an experiment script uses it:
  each line sent, its one-line answer read; the answers as JSON (``""``: closed unanswered);
- ``http URL``: the status of a GET (403 when refused), as JSON;
- ``page URL``: the display page in headless Chromium (the tablet): whether it went live, the
  ``muscle`` messages it drew, its instruction line, its console errors, as JSON;
- ``bus ADDRESS SECONDS FILE [SECRET SERVER]``: every ``muscle`` message of the bus as JSON lines
  in FILE (``t``, ``emg_sample_index``, ``emg_read_offset_ms``, ``emg_missing``, arrival time);
  with CURVE when given this end's secret key file and the publisher's public key file;
- ``sub ADDRESS SECONDS [SECRET SERVER]``: the messages of each topic received in SECONDS, as
  JSON (CURVE as for ``bus``).
"""

from __future__ import annotations

import json
import socket
import sys
import time


def outlet(name: str, seconds: float, kind: str = "Probe") -> None:
    import pylsl

    info = pylsl.StreamInfo(name, kind, 1, 100, "double64", f"probe-{name}")
    out = pylsl.StreamOutlet(info)
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        out.push_sample([pylsl.local_clock()])
        time.sleep(0.01)


def resolve(seconds: float) -> None:
    import pylsl

    print(json.dumps(sorted(info.name() for info in pylsl.resolve_streams(seconds))))


def hosts(seconds: float) -> None:
    import pylsl

    found = pylsl.resolve_streams(seconds)
    print(json.dumps(sorted([i.name(), i.hostname(), i.source_id()] for i in found)))


def offsets(name: str, seconds: float) -> None:
    import pylsl

    found = pylsl.resolve_byprop("name", name, timeout=15)
    if not found:
        raise SystemExit(f"no stream {name!r}")
    inlet = pylsl.StreamInlet(found[0])
    inlet.open_stream(10)
    t, offset = [], []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        offset.append(inlet.time_correction(5))
        t.append(pylsl.local_clock())
        time.sleep(0.5)
    print(json.dumps({"t": t, "offset": offset}))


def _connect(host: str, port: int, wait_s: float = 60.0) -> socket.socket:
    """A connection to ``host:port``, retried until the server listens (its node may still be
    importing on a loaded machine) or ``wait_s`` has passed."""
    deadline = time.monotonic() + wait_s
    while True:
        try:
            return socket.create_connection((host, port), timeout=60)
        except ConnectionRefusedError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def remote(host: str, port: int, lines: list[str]) -> None:
    answers = []
    with _connect(host, port) as sock:
        for line in lines:
            try:
                sock.sendall(line.encode() + b"\n")
                answers.append(_answer(sock))
            except OSError as exc:  # closed by the server (a host not on its allow-list)
                answers.append(f"error: {exc}")
    print(json.dumps(answers))


def _answer(sock: object) -> str:
    """One answer: ``OK`` (LabRecorder's, without a line end) or a line; "" if closed."""
    buffer = b""
    while not buffer.endswith(b"\n") and buffer != b"OK":
        chunk = sock.recv(1)  # type: ignore[attr-defined]
        if not chunk:
            break
        buffer += chunk
    return buffer.decode(errors="replace").strip()


def http(url: str) -> None:
    import urllib.error
    import urllib.request

    deadline = time.monotonic() + 60.0  # the display may still be starting
    while True:
        try:
            with urllib.request.urlopen(url, timeout=10) as response:
                print(json.dumps(response.status))
            return
        except urllib.error.HTTPError as exc:
            print(json.dumps(exc.code))
            return
        except urllib.error.URLError as exc:
            if not isinstance(exc.reason, ConnectionRefusedError) or time.monotonic() > deadline:
                raise
            time.sleep(0.5)


CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]  # fmt: skip


def page(url: str) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        tab = browser.new_page()
        errors: list[str] = []
        tab.on("pageerror", lambda e: errors.append(str(e)))
        tab.on(
            "response", lambda r: errors.append(f"{r.url} {r.status}") if r.status >= 400 else None
        )
        tab.goto(url)
        tab.wait_for_function("() => (window.eiferStats.received.muscle || 0) > 10", timeout=30000)
        stats = tab.evaluate("() => JSON.parse(JSON.stringify(window.eiferStats))")
        result = {
            "conn": tab.text_content("#conn"),
            "muscle": stats["received"].get("muscle", 0),
            "instruction": tab.text_content("#instruction"),
            "errors": errors,
        }
        browser.close()
    print(json.dumps(result))


def _curve(address: str, keys: list[str]) -> dict:
    from streaming.bus.curve import CurveClient

    return {address: CurveClient.from_files(keys[0], keys[1])} if keys else {}


def sub(address: str, seconds: float, keys: list[str]) -> None:
    from streaming.bus.pubsub import Subscriber

    counts: dict[str, int] = {}
    with Subscriber(address, curve=_curve(address, keys)) as subscriber:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            message = subscriber.receive(0.2)
            if message is not None:
                counts[message.topic] = counts.get(message.topic, 0) + 1
    print(json.dumps(counts))


def bus(address: str, seconds: float, path: str, keys: list[str]) -> None:
    import pylsl

    from streaming.bus.pubsub import Subscriber

    subscriber = Subscriber(address, ["muscle"], curve=_curve(address, keys))
    end = time.monotonic() + seconds
    with open(path, "w") as out:
        while time.monotonic() < end:
            message = subscriber.receive(0.2)
            if message is None:
                continue
            fields = message.fields
            row = {
                "t": message.t,
                "emg_sample_index": float(fields.get("emg_sample_index", float("nan"))),
                "emg_read_offset_ms": float(fields.get("emg_read_offset_ms", 0.0)),
                "emg_missing": bool(fields.get("emg_missing")),
                "received": pylsl.local_clock(),
            }
            out.write(json.dumps(row) + "\n")
            out.flush()
    subscriber.close()


if __name__ == "__main__":
    command, *args = sys.argv[1:]
    if command == "outlet":
        outlet(args[0], float(args[1]), *args[2:3])
    elif command == "resolve":
        resolve(float(args[0]))
    elif command == "hosts":
        hosts(float(args[0]))
    elif command == "offsets":
        offsets(args[0], float(args[1]))
    elif command == "remote":
        remote(args[0], int(args[1]), args[2:])
    elif command == "http":
        http(args[0])
    elif command == "page":
        page(args[0])
    elif command == "bus":
        bus(args[0], float(args[1]), args[2], args[3:5])
    elif command == "sub":
        sub(args[0], float(args[1]), args[2:4])
    else:
        raise SystemExit(f"unknown command {command!r}")
