"""LabRecorder's remote control: a TCP line protocol, so experiment scripts written for
LabRecorder (PsychoPy, MATLAB, plain sockets) drive ``eifer record`` unchanged.

Protocol (App-LabRecorder ``src/tcpinterface.cpp``, ``src/mainwindow.cpp``; port 22345 as
LabRecorder's ``RCSPort``): one command per line, ``\\n``-terminated, any number per connection:

- ``select all`` / ``select none``: the streams of the next recording (required ones always);
- ``filename {root:...} {template:...} {participant:...} {session:...} {task:...} {run:...}
  {acquisition:...} {modality:...}``: any subset, in any order (LabRecorder's
  ``{option:value}`` grammar; a value cannot contain ``}``);
- ``start``, ``stop``, ``update`` (look for streams again);
- ``status`` (not in LabRecorder): one line, what is being recorded or what is missing.

Replies: ``OK`` (exactly LabRecorder's two bytes, no line end) once the command is done: after
``start`` the file exists, after ``stop`` it is complete. A malformed or refused command gets
``ERROR: <reason>`` and a line end, and changes nothing; LabRecorder answers ``OK`` to anything,
so a script that ignores replies behaves the same. Binds loopback unless configured otherwise
(LabRecorder listens on every interface, where anyone on the network could start and stop it).
"""

from __future__ import annotations

import errno
import logging
import re
import socketserver
import threading
from dataclasses import dataclass, field

from streaming.errors import EiferError
from streaming.recording.recorder_control import FILE_NAME_KEYS, RecorderController

__all__ = [
    "LISTEN_BACKLOG",
    "MAX_LINE_BYTES",
    "RemoteCommand",
    "RemoteCommandError",
    "RemoteControlError",
    "RemoteControlServer",
    "execute",
    "parse_command",
]

log = logging.getLogger(__name__)

MAX_LINE_BYTES = 8192
LISTEN_BACKLOG = 128
_OPTION = re.compile(r"\{(\w+?):([^}]*)\}")  # LabRecorder's regular expression
_SIMPLE = ("start", "stop", "update", "status")


class RemoteCommandError(EiferError):
    """A remote-control line that is not a command this recorder understands."""


class RemoteControlError(EiferError):
    """The remote-control socket cannot listen (port taken, address unusable)."""


@dataclass(frozen=True)
class RemoteCommand:
    """One parsed remote-control line: its verb and ``{key: value}`` options."""

    verb: str  # start, stop, update, status, select, filename
    options: dict[str, str] = field(default_factory=dict)


def parse_command(line: str) -> RemoteCommand:
    """One line of the protocol; :class:`RemoteCommandError` says what is wrong with it."""
    text = line.strip()
    if not text:
        raise RemoteCommandError(
            "empty line: send start, stop, update, select all|none or filename"
        )
    word, _, rest = text.partition(" ")
    verb, rest = word, rest.strip()
    if word.lower() in (*_SIMPLE, "select", "filename") and word != word.lower():
        # LabRecorder compares the exact lowercase words: "START" must not start a recording
        # here when it would not with LabRecorder
        raise RemoteCommandError(
            f"unknown command {word!r}: commands are lowercase ({word.lower()!r})"
        )
    if verb in _SIMPLE:
        if rest:
            raise RemoteCommandError(f"{verb!r} takes no arguments (got {rest!r})")
        return RemoteCommand(verb)
    if verb == "select":
        if rest not in ("all", "none"):
            raise RemoteCommandError(f"select {rest!r}: use 'select all' or 'select none'")
        return RemoteCommand("select", {"which": rest})
    if verb == "filename":
        return RemoteCommand("filename", _file_name_options(rest))
    raise RemoteCommandError(
        f"unknown command {word!r}: use start, stop, update, select all|none, filename, status"
    )


def _file_name_options(text: str) -> dict[str, str]:
    options: dict[str, str] = {}
    position = 0
    for match in _OPTION.finditer(text):
        between = text[position : match.start()]
        if between.strip():
            raise RemoteCommandError(
                f"filename: cannot read {between.strip()!r}; use {{option:value}}"
            )
        key = match[1].lower()
        if key not in FILE_NAME_KEYS:
            raise RemoteCommandError(
                f"filename: unknown option {match[1]!r}; use {', '.join(FILE_NAME_KEYS)}"
            )
        options[key] = match[2]
        position = match.end()
    if text[position:].strip():
        raise RemoteCommandError(
            f"filename: cannot read {text[position:].strip()!r}; use {{option:value}} parts"
        )
    if not options:
        raise RemoteCommandError("filename needs {option:value} parts, e.g. {participant:P01}")
    return options


def execute(controller: RecorderController, command: RemoteCommand) -> str:
    """Carry out one command; the reply text (``OK``, or a status line)."""
    if command.verb == "start":
        controller.start()
    elif command.verb == "stop":
        controller.stop("stopped by remote control")
    elif command.verb == "update":
        controller.refresh()
    elif command.verb == "select":
        controller.select(command.options["which"])  # type: ignore[arg-type]
    elif command.verb == "filename":
        controller.set_file_name(command.options)
    elif command.verb == "status":
        return controller.status_line() + "\n"
    return "OK"


def reply_to(controller: RecorderController, line: str) -> str:
    """The reply to one line; a bad or refused command never raises (the recorder goes on)."""
    try:
        reply = execute(controller, parse_command(line))
    except EiferError as exc:
        log.warning("remote control: %r: %s", line.strip(), exc)
        reason = " ".join(part.strip() for part in str(exc).splitlines() if part.strip())
        return f"ERROR: {reason}\n"  # one line, whatever the error's layout
    except Exception as exc:  # a fault here must not end the recorder
        log.exception("remote control: %r failed", line.strip())
        return f"ERROR: {type(exc).__name__}: {exc}\n"
    log.info("remote control: %s", line.strip())
    return reply


class _Handler(socketserver.StreamRequestHandler):
    server: _Server

    def handle(self) -> None:
        while True:
            raw = self.rfile.readline(MAX_LINE_BYTES + 1)
            if not raw:
                return
            if len(raw) > MAX_LINE_BYTES and not raw.endswith(b"\n"):
                self._skip_rest_of_line()
                reply = f"ERROR: line longer than {MAX_LINE_BYTES} bytes: ignored\n"
            else:
                reply = reply_to(self.server.controller, raw.decode("utf-8", errors="replace"))
            try:
                self.wfile.write(reply.encode())
            except OSError:
                return  # the client left without reading its reply (many scripts do)

    def _skip_rest_of_line(self) -> None:
        while True:
            chunk = self.rfile.readline(MAX_LINE_BYTES)
            if not chunk or chunk.endswith(b"\n"):
                return


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    # socketserver's default backlog is 5: a burst of script connections beyond it waited for
    # TCP's 1 s SYN retry; 128 is the common default of servers (and of older somaxconn)
    request_queue_size = LISTEN_BACKLOG
    controller: RecorderController


class RemoteControlServer:
    """Serves the protocol for ``controller`` on ``host:port`` (0: any free port) in a thread."""

    def __init__(self, controller: RecorderController, host: str = "127.0.0.1", port: int = 22345):
        try:
            self._server = _Server((host, port), _Handler)
        except OSError as exc:
            taken = exc.errno == errno.EADDRINUSE
            raise RemoteControlError(
                f"remote control: port {port} on {host} is "
                + ("already in use (LabRecorder or another recorder running?); "
                   "set remote_control.port" if taken else f"unusable ({exc.strerror})")
            ) from None  # fmt: skip
        self._server.controller = controller
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.2},
            name="remote-control", daemon=True,
        )  # fmt: skip

    @property
    def address(self) -> tuple[str, int]:
        host, port = self._server.server_address[:2]
        return str(host), int(port)

    def start(self) -> RemoteControlServer:
        self._thread.start()
        return self

    def close(self) -> None:
        if self._thread.is_alive():
            self._server.shutdown()
        self._server.server_close()
