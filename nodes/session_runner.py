"""A real session from one TOML file: the nodes it needs, one status view, one stop.

A session file (``configs/sessions/lab.toml``, ``demo.toml``) lists nodes in start order; each
is an ``eifer`` command with its own config file and ``--set`` overrides, so every node's
settings live in one place and stay consistent (stream names, bus addresses). The runner checks
the ports it will need first (one line, before anything starts), starts the nodes as children
that never outlive it (:mod:`nodes.processes`), waits for each node's LSL stream where one is
named (a node whose hardware is missing fails with its own one-line error, or its stream does
not come within ``start_timeout_s``: either is one clear line, never a hang), prints one status
line for all of them, and stops them together on Ctrl-C, SIGTERM or SIGHUP (the recorder first:
it drains what the sources sent up to the stop).

In node arguments and ``set`` values, ``{work}`` is the session's work folder (logs),
``{pid}`` the runner's process id (unique stream names), and ``{demo_bundle}`` /
``{demo_profile}`` the files the ``prepare`` steps of the same name make (the demo's).
"""

from __future__ import annotations

import json
import os
import re
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, NonNegativeFloat, PositiveFloat, model_validator

from nodes.ports import check_port_free
from nodes.processes import Child, ProcessGroup
from streaming.config import Config
from streaming.errors import EiferError

__all__ = [
    "NodeSpec",
    "SessionConfig",
    "SessionError",
    "SessionRunner",
    "node_argv",
    "substitute",
]

FAIL_GRACE_S = 3.0  # after a node fails: time for others failing at start to say so too
_WORD = re.compile(r"^[a-z][a-z0-9-]*$")


class SessionError(EiferError):
    """A session cannot start or a node of it failed."""


class NodeSpec(Config):
    """One node of the session: an ``eifer`` command, its config file and overrides."""

    command: list[str] = Field(min_length=1)  # e.g. ["node", "emg", "--source", "lsl"]
    config: str = ""  # its --config FILE ("" = the node's shipped default)
    set: dict[str, Any] = Field(default_factory=dict)  # its --set overrides (tables nest)
    enabled: bool = True
    may_finish: bool = False  # a protocol that ends; every other node runs until stopped
    stream: str = ""  # LSL stream this node brings up; the session waits for it
    start_timeout_s: PositiveFloat = 60.0
    hint: str = ""  # shown when the stream does not come (e.g. "is the amplifier on?")
    # TCP ports it binds on loopback, checked free before anything starts
    ports: list[Annotated[int, Field(ge=1, le=65535)]] = Field(default_factory=list)
    records: bool = False  # the recorder: stopped first, given stop_timeout_s to drain

    @model_validator(mode="after")
    def _eifer_command(self) -> NodeSpec:
        if not _WORD.match(self.command[0]):
            raise ValueError(f"command {self.command!r}: start with an eifer command word")
        from nodes.cli import command_error

        problem = command_error(self.command)
        if problem is not None:  # refused with the session file, before any node starts
            raise ValueError(f"command {self.command!r}: {problem}")
        return self


class SessionConfig(Config):
    name: str = "session"
    status_interval_s: PositiveFloat = 2.0
    stop_timeout_s: PositiveFloat = 40.0  # the recorder's longest drain and close after SIGTERM
    node_stop_timeout_s: PositiveFloat = 10.0  # other nodes: then they are killed
    startup_grace_s: NonNegativeFloat = 0.0  # extra wait after all streams are up
    lsl_scope: Literal["", "machine", "link", "site"] = ""  # "": leave LSL's config alone
    prepare: list[Literal["demo_bundle", "demo_profile"]] = Field(default_factory=list)
    show: list[str] = Field(default_factory=list)  # lines printed once started (URLs, ...)
    nodes: dict[str, NodeSpec] = Field(min_length=1)

    def enabled_nodes(self) -> dict[str, NodeSpec]:
        return {name: node for name, node in self.nodes.items() if node.enabled}


def substitute(text: str, values: dict[str, str]) -> str:
    """``{work}``, ``{pid}``... in ``text``; an unknown ``{name}`` is a clear error."""

    def one(match: re.Match[str]) -> str:
        key = match[1]
        if key not in values:
            raise SessionError(
                f"{{{key}}} in {text!r} is not known here; use {', '.join(sorted(values))}"
            )
        return values[key]

    return re.sub(r"\{(\w+)\}", one, text)


def _flatten(table: dict[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    items: list[tuple[str, Any]] = []
    for key, value in table.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, dict):
            items += _flatten(value, dotted + ".")
        else:
            items.append((dotted, value))
    return items


def _toml_literal(value: Any, values: dict[str, str]) -> str:
    """A TOML literal for ``--set`` (JSON's strings, numbers, booleans and arrays are TOML)."""
    if isinstance(value, str):
        return json.dumps(substitute(value, values))
    if isinstance(value, list):
        return "[" + ", ".join(_toml_literal(v, values) for v in value) + "]"
    return json.dumps(value)


def node_argv(node: NodeSpec, values: dict[str, str], base: Path | None = None) -> list[str]:
    """The ``eifer`` argument list of a node: command, ``--config``, then each ``--set``."""
    argv = [substitute(word, values) for word in node.command]
    if node.config:
        path = Path(substitute(node.config, values))
        if not path.is_absolute() and base is not None and (base / path).is_file():
            path = base / path
        argv += ["--config", str(path)]
    for key, value in _flatten(node.set):
        argv += ["--set", f"{key}={_toml_literal(value, values)}"]
    return argv


def prepare(steps: list[str], work: Path, say: Callable[[str], None]) -> dict[str, str]:
    """The demo's preparation steps: the demo bundle and a simulated calibration profile."""
    made: dict[str, str] = {}
    if "demo_bundle" in steps:
        from nodes.demo import _demo_bundle

        bundle = _demo_bundle(work)
        if bundle is None:
            raise SessionError("prepare demo_bundle: eifer_models is not importable")
        say(f"models: demo bundle {bundle}")
        made["demo_bundle"] = str(bundle)
    if "demo_profile" in steps:
        from nodes.demo import _demo_profile

        say("calibration: computing the participant profile from a simulated calibration run")
        made["demo_profile"] = str(_demo_profile(work))
    return made


def lsl_config_file(work: Path, scope: str) -> Path:
    path = work / "lsl_api.cfg"
    path.write_text(f"[multicast]\nResolveScope = {scope}\n\n[log]\nlevel = -2\n")
    return path


def placeholder_values(work: Path) -> dict[str, str]:
    return {"work": str(work), "pid": str(os.getpid())}


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
        self.waiting: dict[str, float] = {}  # node -> deadline for its stream
        self.streams: dict[str, str] = {}  # node -> its stream's name, placeholders filled in
        self.started_at = time.monotonic()

    def check_ports(self) -> None:
        """Every port a node will bind, before anything starts (one line if one is taken)."""
        for name, node in self.nodes.items():
            for port in node.ports:
                check_port_free("127.0.0.1", port, f"{name} (port {port})")

    def start(self) -> None:
        values = placeholder_values(self.work)
        values.update(prepare(list(self.config.prepare), self.work, self.say))
        argvs = {name: node_argv(node, values, self.base) for name, node in self.nodes.items()}
        self.streams = {name: substitute(node.stream, values) for name, node in self.nodes.items()}
        for name, node in self.nodes.items():
            self.group.start(name, argvs[name], may_finish=node.may_finish)
            if node.stream:
                self.waiting[name] = time.monotonic() + node.start_timeout_s
        self.started_at = time.monotonic()

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
            if node.records and node.ports and code is None:
                state += f", {recorder_status(node.ports[0])}"
            parts.append(f"{child.name}: {state}")
        return f"[{time.monotonic() - self.started_at:5.0f} s] " + " | ".join(parts)

    def stop(self) -> None:
        """The recorder first (it drains what was sent up to now), then the others."""
        recorders = [c for c in self.group.children if self.nodes[c.name].records]
        if recorders:
            first = ProcessGroup(self.work)
            first.children = recorders
            first.stop(self.config.stop_timeout_s)
        self.group.stop(self.config.node_stop_timeout_s)
