"""``eifer display``: a local web server relaying the ZeroMQ bus to the biofeedback page.

A thread subscribes to the bus (:class:`streaming.bus.pubsub.Subscriber`), checks each message
against its topic's contract (:mod:`streaming.bus.schema`: unknown topics are ignored, invalid
messages counted and dropped, never cached), turns it into JSON once (and, for ``muscle``, computes
the biofeedback score and symmetry; for ``face``, JPEGs as base64; with truth streams configured,
the truth at the message's time, :mod:`nodes.display.truth`), and hands it to the asyncio loop, which offers it to every
connected WebSocket client's latest-only slots (:mod:`nodes.display.hub`). The page (``static/``)
draws what arrives. The bus thread survives any message; should it die all the same, ``/health``
says so and the 1 Hz ticker restarts it. Binds 127.0.0.1 by default; no asset is fetched from the
network. Every request passes :mod:`nodes.display.access` first: the ``Origin`` of the page that
sends it, and beyond loopback an access token (printed once, as a URL, at start).

One module past the house's ~450 lines, on purpose: the web handlers, the bus thread and the ticker share
one server's counters, hub and event loop, and one lifecycle; the parts that stand alone are
already their own modules (``hub``: JSON and per-client slots, ``feedback``: scores, ``head``: mesh).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import logging
import re
import socket
import threading
import time
from collections import deque
from pathlib import Path
from typing import Any

import numpy as np
from aiohttp import WSMsgType, web
from pydantic import Field, field_validator, model_validator

from configs import CONFIG_DIR, config_path
from nodes.common import add_config_arguments, load_node_config, restore_sigint
from nodes.display.access import Access, access_token
from nodes.display.feedback import Feedback
from nodes.display.head import HeadMesh, load_head
from nodes.display.hub import Hub, LatestSlots, message_json
from nodes.display.truth import TruthView
from streaming.acquisition.electrodes import load_scheme
from streaming.addresses import (
    DEFAULT_ADDRESS,
    PROTOCOL_ADDRESS,
    BusAddressError,
    SubscriberKeys,
    is_loopback,
)
from streaming.bus.curve import CurveClient
from streaming.bus.pubsub import Message, Subscriber
from streaming.bus.schema import UnknownTopicError, validate
from streaming.config import Config, ConfigError
from streaming.errors import EiferError, PayloadError
from streaming.pipeline.biofeedback import METRICS, load_movement_levels

__all__ = ["DisplayConfig", "DisplayServer", "ServerThread", "add_arguments", "run"]

STATIC_DIR = Path(__file__).resolve().parent / "static"
log = logging.getLogger(__name__)


SHUTDOWN_S = 2.0  # the longest wait for open requests when the display stops
_TOKEN = re.compile(r"[A-Za-z0-9_.~-]{8,}")
_ORIGIN = re.compile(r"https?://[^\s/?#]+")


class DisplayConfig(Config):
    """Settings of ``eifer display`` (``configs/nodes/display.toml``)."""

    host: str = "127.0.0.1"  # loopback; any other address reaches the network: a token then
    port: int = Field(8080, ge=0, le=65535)
    # access token: "" = one is generated when host is beyond loopback; set, it is required on
    # any host (a tablet's bookmark that survives restarts)
    token: str = ""
    open_access: bool = False  # beyond loopback without a token: anyone on the network (warned)
    allowed_origins: list[str] = []  # other pages (scheme://host:port) that may open /ws
    bus_address: str = DEFAULT_ADDRESS
    bus_curve: SubscriberKeys = Field(default_factory=SubscriberKeys)  # CURVE to bus_address
    # the protocol node publishes `instruction` on its own socket ("" = none)
    protocol_address: str = PROTOCOL_ADDRESS
    protocol_curve: SubscriberKeys = Field(default_factory=SubscriberKeys)
    scheme: str = "fridlund"
    movements: str = ""
    head_model: str = ""
    target: str = ""
    metric: str = Field("cosine", pattern="^(" + "|".join(METRICS) + ")$")
    smoothing_s: float = Field(0.3, ge=0.0, le=10.0)
    trace_seconds: float = Field(10.0, gt=0.5, le=120.0)
    stale_after_s: float = Field(2.0, gt=0.0)
    heartbeat_s: float = Field(15.0, ge=0.0)
    reference_dir: str = ""
    # truth streams of simulated sources, shown beside the live data ("" = none, as in a lab):
    # the synthetic participant's VideoTruth (<camera name>-truth), the simulator's EMGTruth
    video_truth: str = ""
    emg_truth: str = ""

    @field_validator("token")
    @classmethod
    def _usable_token(cls, token: str) -> str:
        if token and not _TOKEN.fullmatch(token):
            raise ValueError(
                "a token is at least 8 URL-safe characters (letters, digits, _ . ~ -); "
                'leave it "" to have one generated'
            )
        return token

    @field_validator("allowed_origins")
    @classmethod
    def _origins(cls, origins: list[str]) -> list[str]:
        for origin in origins:
            if not _ORIGIN.fullmatch(origin.rstrip("/")):
                raise ValueError(
                    f"{origin!r} is not an origin: scheme://host[:port], e.g. http://tablet:8080"
                )
        return [origin.rstrip("/").lower() for origin in origins]

    @model_validator(mode="after")
    def _token_or_open(self) -> DisplayConfig:
        if self.token and self.open_access:
            raise ValueError("open_access = true and a token contradict each other: choose one")
        return self


class DisplayServer:
    """The aiohttp application plus the bus thread; ``start()``/``stop()`` on a running loop."""

    def __init__(self, config: DisplayConfig) -> None:
        self.config = config
        self.scheme = load_scheme(config.scheme)
        movements_path = (
            Path(config.movements) if config.movements else CONFIG_DIR / "movements.toml"
        )
        movements = load_movement_levels(movements_path) if movements_path.is_file() else {}
        self.feedback = Feedback(
            self.scheme, movements, metric=config.metric, smoothing_s=config.smoothing_s
        )
        if config.target:
            try:
                self.feedback.select(config.target)
            except ValueError as exc:
                raise ConfigError(f"display target: {exc}") from None
        self.head: HeadMesh | None = None
        self.head_note = (
            'no head model configured (set head_model to "synthetic" or a FLAME-layout .npz)'
        )
        if config.head_model:
            self.head = load_head(config.head_model)  # BundleError names the file
            self.head_bytes = self.head.to_bytes()
            self.head_note = ""
        self.hub = Hub()
        self.truth = TruthView()  # the configured streams are opened by start()
        self._channel_muscles: dict[tuple[str, ...], tuple[list[str], list[str]]] = {}
        self.errors: deque[str] = deque(maxlen=8)
        self._errors_lock = threading.Lock()
        self._logged_at = -1e9
        self._unlogged = 0
        self.bus_messages = 0
        self.bus_last_monotonic: float | None = None
        self.undecodable = 0  # counted by the subscriber: not msgpack, bad arrays, ...
        self.invalid = 0  # decoded, but its fields break the topic's contract
        self.relay_failed = 0  # valid, yet turning it into page messages failed
        self.ignored = 0  # topics outside the contract
        self.bus_disconnects = 0  # connections dropped: an oversized message, a publisher gone
        self.bus_thread_restarts = 0
        self.bus_thread_crash: str | None = None
        self.url = ""
        self.access = Access(
            access_token(config.host, config.token, config.open_access),
            frozenset(config.allowed_origins),
            check_host=is_loopback(config.host),
        )
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop_bus = threading.Event()
        self._bus_thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self._ticker: asyncio.Task[None] | None = None
        self._sockets: set[web.WebSocketResponse] = set()

    # ---- web application -------------------------------------------------------------------
    def app(self) -> web.Application:
        app = web.Application(middlewares=[self.access.middleware])
        app.router.add_get("/", self._index)
        app.router.add_get("/ws", self._websocket)
        app.router.add_get("/head.json", self._head_json)
        app.router.add_get("/head.bin", self._head_bin)
        app.router.add_get("/health", self._health)
        app.router.add_static("/static/", STATIC_DIR, show_index=False)
        return app

    async def _index(self, request: web.Request) -> web.StreamResponse:
        return web.FileResponse(STATIC_DIR / "index.html", headers={"Cache-Control": "no-cache"})

    async def _head_json(self, request: web.Request) -> web.Response:
        return web.json_response(self.head.meta() if self.head else {"note": self.head_note})

    async def _head_bin(self, request: web.Request) -> web.Response:
        if self.head is None:
            raise web.HTTPNotFound(text=self.head_note)
        return web.Response(body=self.head_bytes, content_type="application/octet-stream")

    async def _health(self, request: web.Request) -> web.Response:
        return web.json_response(self.health())

    def health(self) -> dict[str, Any]:
        age = (
            None if self.bus_last_monotonic is None else time.monotonic() - self.bus_last_monotonic
        )
        thread = self._bus_thread
        return {
            "bus": self.config.bus_address,
            "bus_messages": self.bus_messages,
            "bus_age_s": age,
            "rejected": self.rejected,
            "undecodable": self.undecodable,
            "bus_disconnects": self.bus_disconnects,
            "invalid": self.invalid,
            "relay_failed": self.relay_failed,
            "ignored_topics": self.ignored,
            "feedback_skipped": self.feedback.skipped(),
            "bus_thread": {
                "alive": thread is not None and thread.is_alive(),
                "restarts": self.bus_thread_restarts,
                "last_crash": self.bus_thread_crash,
            },
            "clients": len(self.hub.clients),
            "pending_bytes": self.hub.pending_bytes(),
            "skipped": sum(c.skipped for c in self.hub.clients),
            "truth": self.truth.status(),
            "errors": self._recent_errors(),
        }

    @property
    def rejected(self) -> int:
        """Bus messages dropped: undecodable, against the contract, or failing to relay."""
        return self.undecodable + self.invalid + self.relay_failed

    def _recent_errors(self) -> list[str]:
        with self._errors_lock:
            return list(self.errors)

    def hello(self) -> str:
        scheme = self.scheme
        return message_json(
            "hello",
            {
                "scheme": scheme.name,
                "labels": scheme.labels,
                "muscles": scheme.muscles,
                "sides": scheme.sides,
                "positions": scheme.positions,
                "pairs": [list(pair) for pair in scheme.pairs],
                "head": self.head.meta() if self.head else None,
                "head_note": self.head_note,
                "trace_seconds": self.config.trace_seconds,
                "stale_after_s": self.config.stale_after_s,
                "bus": self.config.bus_address,
            },
        )

    async def _websocket(self, request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse(heartbeat=self.config.heartbeat_s or None, max_msg_size=1 << 16)
        await ws.prepare(request)
        slots = LatestSlots()
        slots.offer("hello", self.hello())
        slots.offer("feedback_config", message_json("feedback_config", self.feedback.state()))
        for topic, text in self.hub.latest.items():
            slots.offer(topic, text)
        self.hub.clients.add(slots)
        self._sockets.add(ws)
        writer = asyncio.create_task(self._write(ws, slots))
        try:
            async for msg in ws:
                if msg.type == WSMsgType.TEXT:
                    self._command(msg.data)
        finally:
            self.hub.remove(slots)
            self._sockets.discard(ws)
            writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await writer
        return ws

    async def _write(self, ws: web.WebSocketResponse, slots: LatestSlots) -> None:
        try:
            while not ws.closed:
                for text in await slots.take():
                    await ws.send_str(text)  # waits for the socket to drain: backpressure
                    slots.sent += 1
        except (ConnectionError, RuntimeError) as exc:
            log.debug("client gone: %s", exc)

    def _command(self, text: str) -> None:
        """A page request: choose target or metric, or capture the current pattern."""
        try:
            request = json.loads(text)
            kind = request.get("type")
            if kind == "target":
                name = str(request.get("name", ""))
                if name.startswith("file:") and name not in self.feedback.targets:
                    # the page chooses among known targets; files are named on the command line
                    raise ValueError("reference files are loaded with --set target=file:<path>")
                self.feedback.select(name)
            elif kind == "metric":
                self.feedback.set_metric(str(request.get("name", "")))
            elif kind == "capture":
                self.feedback.capture(self.config.reference_dir or None)
            else:
                raise ValueError(f"unknown page request {kind!r}")
        except (ValueError, AttributeError, EiferError) as exc:
            self._error(f"page request {text[:80]!r}: {exc}")
            return
        self.hub.broadcast(
            "feedback_config", message_json("feedback_config", self.feedback.state())
        )

    def _error(self, text: str) -> None:
        """Keep ``text`` for ``/health`` and the page; log it, at most once a second (a flood
        of bad bus messages must not flood the log)."""
        with self._errors_lock:  # appended from the bus thread, read on the event loop
            self.errors.append(f"{time.strftime('%H:%M:%S')} {text}")
            now = time.monotonic()
            if now - self._logged_at < 1.0:
                self._unlogged += 1
                return
            more = f" (+{self._unlogged} more since)" if self._unlogged else ""
            self._logged_at, self._unlogged = now, 0
        log.warning("%s%s", text, more)

    async def _tick(self) -> None:
        """1 Hz: restart a dead bus thread; the display's own status, with each client's own
        skipped count."""
        while True:
            await asyncio.sleep(1.0)
            self._revive_bus_thread()
            health = self.health()
            for slots in list(self.hub.clients):
                fields = dict(health, skipped=slots.skipped, sent=slots.sent)
                slots.offer("display", message_json("display", fields))

    # ---- bus thread ------------------------------------------------------------------------
    def _bus_loop(self, subscriber: Subscriber) -> None:
        """Runs in the bus thread, which owns ``subscriber`` (zmq sockets are not thread-safe).

        No message can end it: each one that fails is counted and reported. Should it end all
        the same (a socket error), the crash is kept for ``/health`` and the ticker restarts it.
        """
        counted = 0  # the subscriber's rejections already added to ``undecodable``
        dropped = 0  # its dropped connections already added to ``bus_disconnects``
        try:
            while not self._stop_bus.is_set():
                message = subscriber.receive(0.1)
                self.undecodable += subscriber.rejected - counted
                counted = subscriber.rejected
                if subscriber.disconnects > dropped:
                    self.bus_disconnects += subscriber.disconnects - dropped
                    dropped = subscriber.disconnects
                    self._error(
                        "bus: a connection dropped (a message over 16 MiB, or the "
                        "publisher stopped); messages queued on it were lost"
                    )
                if subscriber.last_error:
                    self._error(f"bus: {subscriber.last_error}")
                    subscriber.last_error = None
                if message is None:
                    continue
                try:
                    out = self.accept(message)
                except UnknownTopicError:
                    self.ignored += 1
                    continue
                except PayloadError as exc:
                    self.invalid += 1
                    self._error(f"bus: {exc}")
                    continue
                except Exception as exc:  # a bug here must cost one message, not the display
                    self.relay_failed += 1
                    log.exception("display: relaying a %s message failed", message.topic[:40])
                    self._error(f"bus: relaying {message.topic[:40]!r} failed: {exc!r}"[:300])
                    continue
                self._broadcast(out)
        except BaseException as exc:
            self.bus_thread_crash = f"{time.strftime('%H:%M:%S')} {exc!r}"[:300]
            self._error(f"bus thread stopped: {exc!r}; restarting it")
            log.exception("display: bus thread stopped")
        finally:
            subscriber.close()

    def accept(self, message: Message) -> list[tuple[str, str]]:
        """The page messages (topic, JSON) for one bus message, checked against its topic's
        contract first. :class:`UnknownTopicError` for topics outside the contract,
        :class:`~streaming.errors.PayloadError` for invalid fields: nothing of such a message
        is cached or forwarded."""
        message = validate(message)
        self.bus_messages += 1
        self.bus_last_monotonic = time.monotonic()
        fields = self._page_fields(message)
        out = [(message.topic, message_json(message.topic, fields, message.t, message.frame))]
        if message.topic == "muscle":
            try:
                with np.errstate(all="ignore"):  # absurd values give a None score, not warnings
                    result = self.feedback.process(message.fields, message.t or time.monotonic())
            except (ValueError, TypeError) as exc:
                self._error(str(exc))
                result = None
            if result is not None:
                out.append(("feedback", message_json("feedback", result, message.t, message.frame)))
        return out

    def _page_fields(self, message: Message) -> dict[str, Any]:
        """A checked message's fields as the page gets them: JPEG bytes as base64 text (JSON has
        no bytes), and the truth at the message's time where a truth stream is read."""
        fields, t = message.fields, message.t
        if message.topic == "face":
            fields = dict(fields)
            for key in ("image", "crop"):
                if fields.get(key) is not None:
                    fields[key] = base64.b64encode(fields[key]).decode("ascii")
            box = self.truth.face_box(t)
            if box is not None:
                fields["truth_face_box"] = box * float(fields["scale"])
        elif message.topic == "expression":
            phi = self.truth.phi(t)
            if phi is not None:
                fields = dict(fields, phi_truth=phi)
        elif message.topic == "muscle" and self.truth.enabled:
            muscles, sides = self._muscles_of(fields["channels"])
            activation = self.truth.activation(t, muscles, sides)
            if activation is not None:
                fields = dict(fields, truth_activation=activation)
        return fields

    def _muscles_of(self, channels: list[str]) -> tuple[list[str], list[str]]:
        """Muscle and side of each channel label (by the scheme; "" for labels it lacks)."""
        key = tuple(channels)
        if key not in self._channel_muscles:
            where = {label: i for i, label in enumerate(self.scheme.labels)}
            index = [where.get(label) for label in channels]
            self._channel_muscles[key] = (
                ["" if i is None else self.scheme.muscles[i] for i in index],
                ["" if i is None else self.scheme.sides[i] for i in index],
            )
        return self._channel_muscles[key]

    def _broadcast(self, out: list[tuple[str, str]]) -> None:
        loop = self._loop
        if loop is not None and not loop.is_closed():
            for topic, text in out:
                with contextlib.suppress(RuntimeError):  # loop closing during shutdown
                    loop.call_soon_threadsafe(self.hub.broadcast, topic, text)

    def _subscribe(self) -> Subscriber:
        config = self.config
        addresses = [a for a in (config.bus_address, config.protocol_address) if a]
        curve = {
            config.bus_address: CurveClient.from_keys(config.bus_curve),
            config.protocol_address: CurveClient.from_keys(config.protocol_curve),
        }
        try:
            return Subscriber(addresses, curve=curve)
        except BusAddressError as exc:
            raise ConfigError(
                f"display: {exc} (set with --set bus_address=... / protocol_address=...)"
            ) from None

    def _start_bus_thread(self, subscriber: Subscriber) -> None:
        self._bus_thread = threading.Thread(
            target=self._bus_loop, args=(subscriber,), name="display-bus", daemon=True
        )
        self._bus_thread.start()

    def _revive_bus_thread(self) -> None:
        """Restart the bus thread if it died (on the event loop, at 1 Hz)."""
        thread = self._bus_thread
        if thread is None or thread.is_alive() or self._stop_bus.is_set():
            return
        try:
            subscriber = self._subscribe()
        except EiferError as exc:
            self._error(f"bus thread restart failed: {exc}")
            return
        self.bus_thread_restarts += 1
        log.warning("display: restarting the bus thread (restart %d)", self.bus_thread_restarts)
        self._start_bus_thread(subscriber)

    # ---- lifecycle -------------------------------------------------------------------------
    async def start(self) -> str:
        """Serve on the configured host/port (port 0 = any free one); returns the page URL."""
        self._loop = asyncio.get_running_loop()
        # a page's requests are short and its WebSockets are closed by stop(): never wait
        # aiohttp's default 60 s for handlers at shutdown (Ctrl-C must end the display now)
        self._runner = web.AppRunner(self.app(), access_log=None, shutdown_timeout=SHUTDOWN_S)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.config.host, self.config.port)
        try:
            await site.start()
        except OSError as exc:
            await self._runner.cleanup()
            raise ConfigError(
                f"display: cannot listen on {self.config.host}:{self.config.port} ({exc}); "
                "choose another port with --set port=N"
            ) from None
        host, port = site._server.sockets[0].getsockname()[:2]  # type: ignore[union-attr]
        if host in ("0.0.0.0", "::"):  # every interface: the name other computers know
            host = socket.gethostname()
        self.url = f"http://{f'[{host}]' if ':' in host else host}:{port}/"
        try:
            subscriber = self._subscribe()
        except EiferError:
            await self._runner.cleanup()
            raise
        self._stop_bus.clear()
        self.truth = TruthView(self.config.video_truth, self.config.emg_truth)
        self._start_bus_thread(subscriber)
        self._ticker = asyncio.create_task(self._tick())
        return self.url

    async def stop(self) -> None:
        self._stop_bus.set()
        if self._ticker is not None:
            self._ticker.cancel()
        for ws in list(self._sockets):
            with contextlib.suppress(Exception):
                await asyncio.wait_for(ws.close(), 1.0)
        if self._runner is not None:
            await self._runner.cleanup()
        if self._bus_thread is not None:
            await asyncio.to_thread(self._bus_thread.join, 2.0)
        await asyncio.to_thread(self.truth.close)

    @property
    def open_url(self) -> str:
        """The page's URL with its access token, when one is required (printed once)."""
        return f"{self.url}?token={self.access.token}" if self.access.token else self.url

    def exposure_warning(self) -> str | None:
        """One line when the page is served beyond loopback without a token, else None."""
        if self.access.token is not None or is_loopback(self.config.host):
            return None
        return (
            f"display: serving on {self.config.host} beyond loopback without an access token "
            "(open_access): anyone who reaches this port sees the participant's data"
        )


class ServerThread:
    """Run a :class:`DisplayServer` on its own event loop in a thread (tests, benchmarks, demo)."""

    def __init__(self, config: DisplayConfig) -> None:
        self.server = DisplayServer(config)
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._main, name="display-server", daemon=True)

    def _main(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(self.server.start())
        except BaseException as exc:
            self._error = exc
            self._ready.set()
            return
        self._ready.set()
        self._loop.run_forever()
        self._loop.run_until_complete(self.server.stop())
        self._loop.close()

    def start(self, timeout_s: float = 10.0) -> str:
        self._thread.start()
        if not self._ready.wait(timeout_s):
            raise TimeoutError("display server did not start")
        if self._error is not None:
            raise self._error
        return self.server.url

    def call(self, fn: Any, timeout_s: float = 5.0) -> Any:
        """Run ``fn()`` on the server's loop (safe access to its state) and return the result."""

        async def wrapper() -> Any:
            return fn()

        return asyncio.run_coroutine_threadsafe(wrapper(), self._loop).result(timeout_s)

    def stop(self) -> None:
        if self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10.0)

    def __enter__(self) -> ServerThread:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_arguments(
        parser, example="port=8090 --set target=Smile-Open", default="configs/nodes/display.toml"
    )


def load(args: argparse.Namespace) -> DisplayConfig:
    return load_node_config(DisplayConfig, args, default=config_path("nodes", "display.toml"))


async def _serve(config: DisplayConfig) -> None:
    server = DisplayServer(config)
    await server.start()
    if (warning := server.exposure_warning()) is not None:
        log.warning("%s", warning)
    print(
        f"eifer display: open {server.open_url}  (bus {config.bus_address}; Ctrl-C to stop)",
        flush=True,
    )
    if server.head_note:
        print(f"eifer display: {server.head_note}", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await server.stop()


def run(args: argparse.Namespace) -> int:
    config = load(args)
    restore_sigint()  # asyncio only handles SIGINT when it has its default handler
    try:
        asyncio.run(_serve(config))
    except KeyboardInterrupt:
        return 0
    return 0
