"""The display server: bus -> JSON over WebSocket, latest-only backpressure, bad input, config."""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import msgpack
import numpy as np
import psutil
import pytest
import zmq
from aiohttp import ClientSession

from configs import config_path
from nodes.display.head import load_head
from nodes.display.hub import Hub, LatestSlots, message_json, to_jsonable
from nodes.display.server import DisplayConfig, ServerThread
from streaming.config import ConfigError, load_config


def _ws_url(http_url: str) -> str:
    return http_url.replace("http://", "ws://") + "ws"


async def _collect(url: str, want: set[str], timeout_s: float = 10.0) -> dict[str, dict]:
    """Read messages until every topic in ``want`` has arrived; newest per topic."""
    got: dict[str, dict] = {}
    async with ClientSession() as session, session.ws_connect(_ws_url(url)) as ws:
        deadline = time.monotonic() + timeout_s
        while not want <= got.keys() and time.monotonic() < deadline:
            msg = await ws.receive(timeout=deadline - time.monotonic())
            body = json.loads(msg.data)
            got[body["topic"]] = body
    return got


# ---- JSON conversion and latest-only slots -----------------------------------------------------
def test_arrays_become_lists_and_nan_becomes_null() -> None:
    out = to_jsonable({"a": np.array([1.0, np.nan, np.inf], np.float32), "b": np.int64(3)})
    assert out == {"a": [1.0, None, None], "b": 3}
    body = json.loads(message_json("muscle", {"x": np.float32(0.5)}, t=1.5, frame=7))
    assert body == {"topic": "muscle", "t": 1.5, "frame": 7, "fields": {"x": 0.5}}


def test_slots_keep_only_the_newest_message_per_topic_and_count_the_rest() -> None:
    async def scenario() -> tuple[list[str], int]:
        slots = LatestSlots()
        for k in range(1000):
            slots.offer("muscle", f"m{k}")
            slots.offer("expression", f"e{k}")
        assert slots.pending == 2
        return await slots.take(), slots.skipped

    items, skipped = asyncio.run(scenario())
    assert items == ["m999", "e999"]
    assert skipped == 2 * 999


def test_hub_offers_each_message_to_every_client_and_remembers_the_latest() -> None:
    async def scenario() -> None:
        hub = Hub()
        a, b = hub.add(), hub.add()
        hub.broadcast("status", "s1")
        assert await a.take() == ["s1"] and await b.take() == ["s1"]
        late = hub.add()  # a new client gets the newest status at once
        assert await late.take() == ["s1"]

    asyncio.run(scenario())


# ---- server over a real bus ----------------------------------------------------------------------
def test_server_relays_bus_topics_and_adds_biofeedback(publisher, display_config) -> None:
    config = display_config(publisher.address, target="Smile-Open")
    with ServerThread(config) as server:
        got = asyncio.run(
            _collect(
                server.server.url,
                {
                    "hello",
                    "feedback_config",
                    "muscle",
                    "expression",
                    "feedback",
                    "status",
                    "instruction",
                    "display",
                },
            )
        )
    hello = got["hello"]["fields"]
    assert hello["labels"][:2] == ["F1", "F2"] and len(hello["positions"]) == 22
    assert len(hello["pairs"]) == 11
    muscle = got["muscle"]["fields"]
    assert len(muscle["emg_measured"]) == 22 and isinstance(muscle["emg_measured"][0], float)
    assert got["muscle"]["frame"] is not None
    assert len(got["expression"]["fields"]["phi_video"]) == 55
    feedback = got["feedback"]["fields"]
    assert feedback["target"] == "Smile-Open" and 0 <= feedback["score"] <= 100
    assert len(feedback["symmetry"]) == 11
    assert got["feedback_config"]["fields"]["target"] == "Smile-Open"
    assert got["display"]["fields"]["bus_messages"] > 0


def test_malformed_bus_messages_are_counted_and_reported_not_fatal(display_config) -> None:
    context = zmq.Context.instance()
    pub = context.socket(zmq.PUB)
    pub.setsockopt(zmq.LINGER, 0)
    port = pub.bind_to_random_port("tcp://127.0.0.1")
    from streaming.bus.pubsub import encode

    try:
        with ServerThread(display_config(f"tcp://127.0.0.1:{port}")) as server:
            time.sleep(0.5)  # let the subscription reach the publisher
            for _ in range(5):
                pub.send_multipart([b"muscle", b"\xc1 not msgpack"])
                # channels of another scheme: no score, an error entry naming the channels
                pub.send_multipart(
                    encode(
                        "muscle", {"channels": ["K1", "K2"], "emg_measured": np.ones(2, np.float32)}
                    )
                )
                time.sleep(0.05)
            time.sleep(0.5)
            health = server.call(server.server.health)
            assert health["rejected"] >= 1
            assert any("not msgpack" in e for e in health["errors"])
            assert any("lacks channels" in e for e in health["errors"])
            got = asyncio.run(_collect(server.server.url, {"hello", "muscle"}))
            assert got["muscle"]["fields"]["channels"] == ["K1", "K2"]  # still relayed
    finally:
        pub.close()


def test_bad_page_requests_become_error_entries(publisher, display_config) -> None:
    async def send(url: str) -> None:
        async with ClientSession() as session, session.ws_connect(_ws_url(url)) as ws:
            await ws.send_str('{"type": "target", "name": "Juggling"}')
            await ws.send_str("not json")
            await ws.send_str('{"type": "target", "name": "file:/etc/hostname"}')
            await ws.send_str('{"type": "metric", "name": "distance"}')
            await asyncio.sleep(0.3)

    with ServerThread(display_config(publisher.address)) as server:
        asyncio.run(send(server.server.url))
        errors = server.call(server.server.health)["errors"]
        assert any("Juggling" in e for e in errors)
        assert any("not json" in e for e in errors)
        assert any("--set target=file:" in e for e in errors)
        assert server.server.feedback.target_name == ""
        assert server.server.feedback.scorer.metric == "distance"


def _raw_ws_client_that_never_reads(port: int) -> socket.socket:
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", port))
    sock.sendall(
        b"GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    return sock


@pytest.fixture
def fast_publisher(publisher):
    """The conftest publisher, stopped, to publish frames by hand."""
    publisher._stop.set()
    if publisher._thread is not None:
        publisher._thread.join(5.0)
    return publisher


def test_slow_client_memory_stays_bounded(fast_publisher, display_config) -> None:
    config = display_config(fast_publisher.address, heartbeat_s=0.0)
    with ServerThread(config) as server:
        port = int(server.server.url.rstrip("/").rsplit(":", 1)[1])
        slow = _raw_ws_client_that_never_reads(port)
        try:
            time.sleep(0.3)
            for _ in range(300):  # warm-up: fill the socket buffers
                fast_publisher.publish_frame()
                time.sleep(0.0005)
            time.sleep(0.3)
            process = psutil.Process()
            rss_before = process.memory_info().rss
            pending = []
            for k in range(3000):
                fast_publisher.publish_frame()
                time.sleep(0.0005)
                if k % 500 == 0:
                    pending.append(server.call(server.server.hub.pending_bytes))
            time.sleep(0.5)
            rss_growth_mb = (process.memory_info().rss - rss_before) / 1e6
            health = server.call(server.server.health)
        finally:
            slow.close()
    print(
        f"slow client: skipped {health['skipped']}, pending bytes {pending}, "
        f"RSS growth {rss_growth_mb:.1f} MB over 3000 frames"
    )
    assert health["clients"] == 1
    assert health["skipped"] > 2000  # the never-reading client got almost nothing
    assert max(pending) < 64_000  # a few messages at most, never a queue
    assert rss_growth_mb < 25.0


def test_heartbeat_drops_a_client_that_never_answers(publisher, display_config) -> None:
    with ServerThread(display_config(publisher.address, heartbeat_s=0.4)) as server:
        port = int(server.server.url.rstrip("/").rsplit(":", 1)[1])
        slow = _raw_ws_client_that_never_reads(port)
        try:
            time.sleep(0.3)
            assert server.call(server.server.health)["clients"] == 1
            deadline = time.monotonic() + 10
            while server.call(server.server.health)["clients"] and time.monotonic() < deadline:
                time.sleep(0.1)
            assert server.call(server.server.health)["clients"] == 0
        finally:
            slow.close()


# ---- head, config, CLI ----------------------------------------------------------------------------
def test_head_basis_reproduces_the_flame_layer() -> None:
    torch = pytest.importorskip("torch")
    from eifer_models.flame import FLAME
    from eifer_models.synthetic_head import make_synthetic_head

    head = load_head("synthetic")
    flame = FLAME(make_synthetic_head(), n_shape=1, n_exp=50)
    zero = flame(expression=torch.zeros(1, 50)).vertices[0].numpy()
    scale = 2.0 / float(np.ptp(zero[:, :2], axis=0).max())
    centre = (zero.max(0) + zero.min(0)) / 2

    def error_and_motion(phi: np.ndarray) -> tuple[float, float]:
        want = (
            flame(
                expression=torch.from_numpy(phi[None, :50]),
                eyelid=torch.from_numpy(phi[None, 50:52]),
                jaw=torch.from_numpy(phi[None, 52:]),
            )
            .vertices[0]
            .numpy()
        )
        got = head.vertices(phi) / scale
        return float(np.abs(got - (want - centre)).max()), float(np.abs(want - zero).max())

    phi = np.zeros(55, np.float32)
    phi[:52] = np.random.default_rng(0).normal(0, 1, 52)  # expression + eyelids: linear
    error, moved = error_and_motion(phi)
    assert moved > 1e-3 and error < 1e-4 * moved  # exact up to float rounding
    # jaw: first-order approximation (the rotation also turns the expression offsets), close for
    # small jaw angles; its error grows with the square of the angle
    phi[52] = 0.05
    error, moved = error_and_motion(phi)
    assert error < 0.05 * moved
    meta = head.meta()
    assert len(head.to_bytes()) == 4 * (meta["n_vertices"] * 3 * 56 + meta["n_triangles"] * 3)


def test_shipped_display_config_validates_and_bad_values_are_named() -> None:
    config = load_config(DisplayConfig, config_path("nodes", "display.toml"))
    assert config.host == "127.0.0.1"
    with pytest.raises(ConfigError, match="metric"):
        load_config(DisplayConfig, config_path("nodes", "display.toml"), ["metric=euclid"])
    with pytest.raises(ConfigError, match="colour"):
        load_config(DisplayConfig, config_path("nodes", "display.toml"), ["colour=1"])


def test_a_malformed_bus_address_is_a_clear_config_error(display_config) -> None:
    with pytest.raises(ConfigError, match="bus"):
        ServerThread(display_config("localhost-5556")).start()


def test_feedback_reads_channels_in_any_order(display_config) -> None:
    from nodes.display.feedback import Feedback
    from streaming.acquisition.electrodes import load_scheme
    from streaming.pipeline.biofeedback import load_movement_levels

    scheme = load_scheme("fridlund")
    feedback = Feedback(scheme, load_movement_levels(config_path("movements.toml")))
    feedback.select("Snarl")
    rng = np.random.default_rng(2)
    act = rng.random(22)
    in_order = feedback.process({"channels": scheme.labels, "emg_measured": act}, 0.0)
    mmm = scheme.ordering("mmm")
    feedback2 = Feedback(scheme, {"Snarl": {}})
    feedback2.targets["Snarl"] = feedback.targets["Snarl"]
    feedback2.select("Snarl")
    shuffled = {"channels": [scheme.labels[i] for i in mmm], "emg_measured": act[mmm]}
    again = feedback2.process(shuffled, 0.0)
    assert again["score"] == pytest.approx(in_order["score"])
    np.testing.assert_allclose(again["symmetry"], in_order["symmetry"])
    assert feedback.process({"emg_missing": True, "emg_measured": act}, 0.1) is None


def test_unknown_target_or_busy_port_is_a_clear_config_error(publisher, display_config) -> None:
    with pytest.raises(ConfigError, match="Juggling"):
        ServerThread(display_config(publisher.address, target="Juggling"))
    with ServerThread(display_config(publisher.address)) as server:
        port = int(server.server.url.rstrip("/").rsplit(":", 1)[1])
        with pytest.raises(ConfigError, match="port"):
            ServerThread(display_config(publisher.address, port=port)).start()


def test_cli_reports_a_bad_setting_in_one_line(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "nodes.cli", "display", "--set", "metric=euclid"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert "eifer display: error:" in result.stderr and "metric" in result.stderr


def test_eifer_display_serves_the_page_until_interrupted() -> None:
    import signal
    import urllib.request

    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "nodes.cli",
            "display",
            "--set",
            "port=0",
            "--set",
            'head_model=""',
            "--set",
            'bus_address="tcp://127.0.0.1:1"',  # quoted as a session file's --set is
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # as a background job of a script starts it: SIGINT ignored, which the display undoes
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN),
    )
    try:
        line = proc.stdout.readline()
        assert "open http://127.0.0.1:" in line, line + proc.stderr.read()
        url = line.split("open ", 1)[1].split()[0]
        with urllib.request.urlopen(url, timeout=10) as response:
            assert b"EIFER live" in response.read()
        with urllib.request.urlopen(url + "static/app.js", timeout=10) as response:
            assert b"requestAnimationFrame" in response.read()
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=20)
    assert proc.returncode in (0, 130)


# ---- hostile bus input ----------------------------------------------------------------------------
def _hostile_round(pub: zmq.Socket) -> None:
    """One of each message that used to break the display, then a good instruction and muscle."""
    from streaming.bus.pubsub import encode

    overflow = {"dtype": "<f4", "shape": [2**32, 2**32], "data": b""}
    pub.send_multipart([b"muscle", msgpack.packb({"schema": 1, "fields": {"x": overflow}})])
    pub.send_multipart(encode("hello", {"labels": 3}))  # would replace the server's hello
    pub.send_multipart(encode("display", {"clients": "many"}))
    pub.send_multipart(encode("instruction", {"text": 42, "remaining_s": "soon"}))
    pub.send_multipart(encode("muscle", {"channels": 5, "emg_measured": [1.0]}))
    pub.send_multipart(encode("muscle", {"channels": ["F1"]}))  # no emg_measured
    pub.send_multipart(encode("status", {"streams": {"emg": None}, "errors": "x"}))
    pub.send_multipart(encode("instruction", {"text": "Please do: Smile-Open", "phase": "perform"}))
    labels = [f"F{i}" for i in range(1, 23)]
    pub.send_multipart(
        encode("muscle", {"channels": labels, "emg_measured": np.full(22, 0.5, np.float32)}, t=1.0)
    )


def test_hostile_bus_messages_are_dropped_never_cached_and_the_bus_thread_lives(
    display_config,
) -> None:
    pub = zmq.Context.instance().socket(zmq.PUB)
    pub.setsockopt(zmq.LINGER, 0)
    port = pub.bind_to_random_port("tcp://127.0.0.1")
    try:
        with ServerThread(display_config(f"tcp://127.0.0.1:{port}")) as server:
            deadline = time.monotonic() + 20
            health = server.call(server.server.health)
            while health["invalid"] < 10 and time.monotonic() < deadline:  # slow joiner: repeat
                _hostile_round(pub)
                time.sleep(0.2)
                health = server.call(server.server.health)
            latest = server.call(lambda: dict(server.server.hub.latest))
            got = asyncio.run(_collect(server.server.url, {"hello", "instruction", "muscle"}))
    finally:
        pub.close()
    assert health["bus_thread"]["alive"] and health["bus_thread"]["restarts"] == 0
    assert health["invalid"] >= 10 and health["undecodable"] >= 2 and health["ignored_topics"] >= 4
    assert health["rejected"] == health["invalid"] + health["undecodable"]
    assert any("too large" in e for e in health["errors"])
    assert any("instruction.text must be a string" in e for e in health["errors"])
    assert set(latest) <= {"instruction", "muscle", "feedback", "feedback_config"}
    assert json.loads(latest["instruction"])["fields"]["text"] == "Please do: Smile-Open"
    assert len(json.loads(latest["muscle"])["fields"]["emg_measured"]) == 22
    # a page opened after the attack gets the server's hello and the good data only
    assert got["hello"]["fields"]["labels"][:2] == ["F1", "F2"]
    assert got["instruction"]["fields"]["text"] == "Please do: Smile-Open"
    assert got["muscle"]["fields"]["channels"][0] == "F1"


def test_a_dead_bus_thread_is_reported_and_restarted(
    publisher, display_config, monkeypatch
) -> None:
    """Fault injection: the subscriber's socket fails once (as a terminated context does)."""
    from nodes.display import server as server_module

    fail = threading.Event()
    receive = server_module.Subscriber.receive

    def failing_once(self, timeout_s: float):
        if fail.is_set():
            fail.clear()
            raise zmq.ZMQError(zmq.ETERM)
        return receive(self, timeout_s)

    monkeypatch.setattr(server_module.Subscriber, "receive", failing_once)
    with ServerThread(display_config(publisher.address)) as server:
        deadline = time.monotonic() + 15
        while server.call(server.server.health)["bus_messages"] < 10:
            assert time.monotonic() < deadline, "no bus messages"
            time.sleep(0.05)
        fail.set()
        while server.call(server.server.health)["bus_thread"]["restarts"] < 1:
            assert time.monotonic() < deadline + 10, "the bus thread was not restarted"
            time.sleep(0.05)
        before = server.call(server.server.health)["bus_messages"]
        while server.call(server.server.health)["bus_messages"] < before + 10:
            assert time.monotonic() < deadline + 20, "no messages after the restart"
            time.sleep(0.05)
        health = server.call(server.server.health)
    assert health["bus_thread"]["alive"] and health["bus_thread"]["restarts"] == 1
    assert "ZMQError" in health["bus_thread"]["last_crash"]
    assert any("bus thread stopped" in e for e in health["errors"])


def test_nil_and_extreme_muscle_values_do_not_poison_the_feedback(display_config) -> None:
    """Issue 18, item 1: nil values with emg_missing = false, then two finite extremes, then
    good messages: every good message after them is scored, and /health counts the skips."""
    from streaming.bus.pubsub import encode

    labels = [f"F{i}" for i in range(1, 23)]
    good = np.full(22, 0.5, np.float32)
    pub = zmq.Context.instance().socket(zmq.PUB)
    pub.setsockopt(zmq.LINGER, 0)
    port = pub.bind_to_random_port("tcp://127.0.0.1")

    def muscle(values, t: float) -> list[bytes]:
        fields = {"channels": labels, "emg_measured": values, "emg_missing": False}
        return encode("muscle", fields, t=t)

    try:
        with ServerThread(display_config(f"tcp://127.0.0.1:{port}", target="Smile-Open")) as server:
            deadline = time.monotonic() + 20
            while server.call(server.server.health)["bus_messages"] == 0:  # slow joiner
                assert time.monotonic() < deadline, "the display got no bus message"
                pub.send_multipart(muscle([None] * 22, 0.0))
                time.sleep(0.1)
            pub.send_multipart(muscle(np.full(22, 1.7e308), 1.0))
            pub.send_multipart(muscle(np.full(22, -1.7e308), 1.03))
            scores: list = []
            t = 1.1
            while len(scores) < 20:
                assert time.monotonic() < deadline + 10, f"only {len(scores)} scores came"
                pub.send_multipart(muscle(good, t))
                t += 0.033
                time.sleep(0.02)
                latest = server.call(lambda: server.server.hub.latest.get("feedback"))
                if latest is not None and json.loads(latest)["t"] >= 1.1:
                    scores.append(json.loads(latest)["fields"]["score"])
            health = server.call(server.server.health)
    finally:
        pub.close()
    assert all(s is not None for s in scores), scores
    assert health["feedback_skipped"]["F1"] >= 3  # at least one nil message and both extremes


def test_an_oversized_message_is_counted_in_health_and_the_bus_recovers(display_config) -> None:
    """Issue 18, item 2: over 16 MiB on the main bus address: not relayed, counted in /health,
    and the display reconnects (libzmq alone would stay disconnected)."""
    from streaming.bus.pubsub import Publisher

    pub = Publisher("tcp://127.0.0.1:*")
    labels = [f"F{i}" for i in range(1, 23)]
    try:
        with ServerThread(display_config(pub.address)) as server:

            def wait_for_messages(more_than: int, deadline: float) -> None:
                while server.call(server.server.health)["bus_messages"] <= more_than:
                    assert time.monotonic() < deadline, "no bus message arrived"
                    pub.publish("instruction", {"text": "Smile"})
                    time.sleep(0.1)

            wait_for_messages(0, time.monotonic() + 20)
            big = np.zeros((17 << 20) // 4, np.float32)
            pub.publish("muscle", {"channels": labels, "emg_measured": big})
            deadline = time.monotonic() + 20
            while server.call(server.server.health)["bus_disconnects"] == 0:
                assert time.monotonic() < deadline, "the dropped connection was not counted"
                time.sleep(0.1)
            before = server.call(server.server.health)["bus_messages"]
            wait_for_messages(before, time.monotonic() + 20)
            health = server.call(server.server.health)
            latest = server.call(lambda: dict(server.server.hub.latest))
    finally:
        pub.close()
    assert health["bus_disconnects"] >= 1
    assert any("connection dropped" in e for e in health["errors"])
    assert "muscle" not in latest
