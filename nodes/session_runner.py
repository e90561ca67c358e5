"""A session from one TOML file (:mod:`nodes.session_config`): its nodes, one view, one stop.

A session file (``configs/sessions/lab.toml``, ``demo.toml``) lists nodes in start order; each
is an ``eifer`` command with its own config file and ``--set`` overrides, so every node's
settings live in one place and stay consistent (stream names, bus addresses). The runner checks
the ports it will need first (one line, before anything starts), starts the nodes as children
that never outlive it (:mod:`nodes.processes`) in three stages (before the preparation, after
it, with the first frame published on the view's bus), waits for each node's LSL stream where
one is named (a node whose hardware is missing fails with its own one-line error, or its stream
does not come within ``start_timeout_s``: either is one clear line, never a hang), prints one
status line for all of them and, where the file has a ``[view]``, what is published on the bus,
and stops them together (the recorder first: it drains what the sources sent up to the stop).
"""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from nodes.ports import check_bus_address, check_port_free
from nodes.processes import Child, ProcessGroup
from nodes.session_config import SessionConfig, SessionError, Stage, node_argv, substitute
from streaming.addresses import tcp_host_port

if TYPE_CHECKING:
    from nodes.listen import TerminalView
    from streaming.bus.pubsub import Message

Receive = Callable[[float], "Message | None"]

__all__ = [
    "SessionRunner",
    "check_before_start",
    "last_error_line",
    "lsl_config_file",
    "recorder_status",
]

FAIL_GRACE_S = 3.0  # after a node fails: time for others failing at start to say so too


def check_before_start(config: SessionConfig) -> None:
    """What can be checked before anything starts, in a second, with one line: every port a
    node will bind is free and bound by one node only; the demo's participant is held out."""
    owners: dict[int | str, str] = {}
    for name, node in config.enabled_nodes().items():
        for port in node.ports:
            key = (
                port
                if isinstance(port, int) or port.startswith("ipc://")
                else (tcp_host_port(port, name)[1])
            )
            if key in owners:
                raise SessionError(f"{owners[key]} and {name} would both bind port {key}")
            owners[key] = name
            if isinstance(port, int):
                check_port_free("127.0.0.1", port, f"{name} (port {port})")
            else:
                check_bus_address(port, f"{name} ({port})")
    demo = config.prepare.demo
    if demo is not None and demo.models:
        from simulation.demo_preparation import check_held_out

        check_held_out(demo.participant_seed, demo.weights)


def lsl_config_file(work: Path, scope: str) -> Path:
    """An ``lsl_api.cfg`` in ``work`` that keeps discovery to ``scope`` and liblsl quiet."""
    path = work / "lsl_api.cfg"
    path.write_text(f"[multicast]\nResolveScope = {scope}\n\n[log]\nlevel = -2\n")
    return path


def recorder_status(port: int, timeout_s: float = 0.5) -> str:
    """The recorder's own status line, asked over its remote-control socket (``status``)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout_s) as sock:
            sock.sendall(b"status\n")
            reply = b""
            while not reply.endswith(b"\n"):
                chunk = sock.recv(4096)
                if not chunk:
                    break
                reply += chunk
    except OSError:
        return "remote control not answering yet"
    return reply.decode(errors="replace").strip()


def last_error_line(log_tail: str) -> str:
    """The node's own error (``eifer ...: error: ...``, with the indented problem lines of a
    config error joined to it) if it printed one, else its last line."""
    lines = [line.rstrip() for line in log_tail.splitlines() if line.strip()]
    starts = [i for i, line in enumerate(lines) if ": error: " in line]
    if not starts:
        return lines[-1].strip() if lines else "(no output)"
    first = starts[-1]
    end = first + 1
    while end < len(lines) and lines[end][:1].isspace():  # "  key: what is wrong (got ...)"
        end += 1
    return " ".join(line.strip() for line in lines[first:end])


class SessionRunner:
    """Start a session's nodes, watch them, show their status, stop them together."""

    def __init__(
        self,
        config: SessionConfig,
        work: Path,
        say: Callable[[str], None],
        base: Path | None = None,
    ) -> None:
        self.config, self.work, self.say, self.base = config, work, say, base
        self.group = ProcessGroup(work)
        self.nodes = config.enabled_nodes()
        self.values = {"work": str(work)}  # placeholders filled when a node starts
        self.waiting: dict[str, float] = {}  # node -> deadline for its stream
        self.streams: dict[str, str] = {}  # node -> its stream's name
        self.began = self.started_at = time.monotonic()
        self.frames = 0  # published frames seen on the view's bus
        self._quality_line = ""  # the last electrode-quality line said (said again on change)

    def start(self) -> None:
        """The nodes that start before the preparation, the session's ``show`` lines, the
        preparation, then the nodes that start after it."""
        self.start_stage("before_prepare")
        for line in self.config.show:
            self.say(substitute(line, self.values))
        if self.config.prepare.demo is not None:
            from simulation.demo_preparation import prepare_demo

            self.values.update(prepare_demo(self.config.prepare.demo, self.work, self.say))
        self.start_stage("after_prepare")
        self.started_at = time.monotonic()

    def start_stage(self, stage: Stage) -> None:
        for name, node in self.nodes.items():
            if node.start != stage:
                continue
            argv = node_argv(node, self.values, self.base)
            self.group.start(name, argv, may_finish=node.may_finish)
            if node.stream:
                self.streams[name] = substitute(node.stream, self.values)
                self.waiting[name] = time.monotonic() + node.start_timeout_s
            for line in node.show:
                self.say(substitute(line, self.values))

    def check(self, visible: set[str]) -> None:
        """:class:`SessionError` naming the node that failed or whose stream never came."""
        if self.group.failed() is not None:  # one line per failed node (say, two devices off)
            time.sleep(FAIL_GRACE_S)  # nodes checking their hardware at start fail together
            raise SessionError(
                "\n".join(
                    f"{child.name} stopped (exit {child.exit_code}): "
                    f"{last_error_line(child.log_tail())} (log: {child.log_path})"
                    for child in self.group.children
                    if child.exit_code not in (None, *((0,) if child.may_finish else ()))
                )
            )
        now = time.monotonic()
        for name in list(self.waiting):
            node, stream = self.nodes[name], self.streams[name]
            if stream in visible:
                del self.waiting[name]
                self.say(f"{name}: stream {stream!r} is up")
            elif now > self.waiting[name]:
                hint = f" ({node.hint})" if node.hint else ""
                raise SessionError(
                    f"{name}: no LSL stream {stream!r} after {node.start_timeout_s:g} s"
                    f"{hint}; its log: {self.group_child(name).log_path}"
                )

    def group_child(self, name: str) -> Child:
        return next(c for c in self.group.children if c.name == name)

    def status_line(self, visible: set[str]) -> str:
        parts = []
        for child in self.group.children:
            node = self.nodes[child.name]
            code = child.exit_code
            state = "running" if code is None else ("finished" if code == 0 else f"exit {code}")
            stream = self.streams.get(child.name, "")
            if stream and code is None:
                state += f", {stream} " + ("up" if stream in visible else "waiting")
            if node.records and node.ports and isinstance(node.ports[0], int) and code is None:
                state += f", {recorder_status(node.ports[0])}"
            parts.append(f"{child.name}: {state}")
        return f"[{time.monotonic() - self.started_at:5.0f} s] " + " | ".join(parts)

    def watch(self, seconds: float | None) -> None:
        """Until ``seconds`` pass (None: until stopped): check the nodes about twice a second,
        the status line every status interval, and the view of the bus; the first frame
        published there starts the ``first_frame`` nodes."""
        from nodes.listen import TerminalView

        deadline = None if seconds is None else time.monotonic() + seconds
        interval = self.config.status_interval_s
        next_status = time.monotonic() if interval else float("inf")
        visible: set[str] = set()
        view = TerminalView()  # what breaks the bus contract is shown as the reason, counted
        try:
            with self._bus() as receive:
                while deadline is None or time.monotonic() < deadline:
                    if self.waiting or time.monotonic() >= next_status:
                        visible |= _discover()
                    self.check(visible)
                    if time.monotonic() >= next_status:
                        next_status = time.monotonic() + interval
                        self.say(self.status_line(visible))
                    message = receive(0.5)
                    if message is not None:
                        self._show(message, view)
        finally:
            if self.config.view.bus:
                for line in view.summary():
                    self.say(line)

    @contextlib.contextmanager
    def _bus(self) -> Iterator[Receive]:
        """``receive(timeout_s)`` from the view's bus; without a view, a sleep."""
        if not self.config.view.bus:

            def pause(timeout_s: float) -> None:
                time.sleep(timeout_s)

            yield pause
            return
        from streaming.bus.pubsub import Subscriber

        with Subscriber(self.config.view.bus) as subscriber:
            yield subscriber.receive

    def _show(self, message: Message, view: TerminalView) -> None:
        if message.topic == "muscle":
            self.frames += 1
            if self.frames == 1:
                self.say(
                    f"first frame published {time.monotonic() - self.began:.1f} s after the start"
                )
                self.start_stage("first_frame")
            if self.frames % self.config.view.every:
                return
        elif message.topic in ("expression", "face"):
            return  # every frame / 5 per second: the page shows them
        line = view.line(message)
        if message.topic == "quality":  # twice a second: said when the electrodes' states change
            summary = line.split(" ", 2)[-1]
            if summary == self._quality_line:
                return
            self._quality_line = summary
        self.say(line)

    def stop(self) -> None:
        """The recorder first (it drains what was sent up to now), then the others."""
        recorders = [c for c in self.group.children if self.nodes[c.name].records]
        if recorders:
            first = ProcessGroup(self.work)
            first.children = recorders
            first.stop(self.config.stop_timeout_s)
        self.group.stop(self.config.node_stop_timeout_s)


def _discover() -> set[str]:
    """Names of the LSL streams one discovery round sees (about a second). One round sees only
    some of a machine's outlets (liblsl#92, the unicast "lottery" on 127.0.0.1), so "up" means
    seen since the start; a node that dies is caught by its exit, not by its stream."""
    from streaming.acquisition.lsl_io import configure_lsl, list_streams

    configure_lsl()
    return {info.name() for info in list_streams(1.0)}
