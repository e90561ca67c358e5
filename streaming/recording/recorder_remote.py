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
(LabRecorder listens on every interface, where anyone on the network could start and stop it),
and serves only the hosts of an allow-list (addresses, networks such as ``10.0.0.0/24``, or host
names resolved at start; by default this machine): any other host's connection is closed at
once, unanswered, with a log line naming it.
"""

from __future__ import annotations

import errno
import ipaddress
import logging
import re
import socket
import socketserver
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field

from streaming.addresses import is_loopback
from streaming.errors import EiferError
from streaming.recording.recorder_control import FILE_NAME_KEYS, RecorderController

__all__ = [
    "LISTEN_BACKLOG",
    "LOOPBACK_HOSTS",
    "MAX_LINE_BYTES",
    "RemoteCommand",
    "RemoteCommandError",
    "RemoteControlError",
    "RemoteControlServer",
    "allowed_networks",
    "execute",
    "exposure_warning",
    "parse_command",
]

log = logging.getLogger(__name__)

MAX_LINE_BYTES = 8192
LOOPBACK_HOSTS = ("127.0.0.0/8", "::1")  # this machine: the default allow-list
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
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


def allowed_networks(hosts: Sequence[str]) -> tuple[Network, ...]:
    """The allow-list as networks: an address (``10.0.0.7``), a network (``10.0.0.0/24``) or a
    host name (every address it resolves to now); :class:`RemoteControlError` names an entry
    that is none of these."""
    networks: list[Network] = []
    for host in hosts:
        text = host.strip().strip("[]")
        try:
            networks.append(ipaddress.ip_network(text, strict=False))
            continue
        except ValueError:
            pass
        try:
            infos = socket.getaddrinfo(text, None, type=socket.SOCK_STREAM)
        except (socket.gaierror, UnicodeError) as exc:
            raise RemoteControlError(
                f"remote control: allow-list entry {host!r} is not an address, a network "
                f"(10.0.0.0/24) or a known host name ({getattr(exc, 'strerror', exc)})"
            ) from None
        networks += [ipaddress.ip_network(str(info[4][0]).split("%")[0]) for info in infos]
    return tuple(networks)


def exposure_warning(host: str, allow: Sequence[str]) -> str | None:
    """One line when listening on ``host`` beyond loopback for every host (an allow-list entry
    such as ``0.0.0.0/0``), else None: the lab should name its experiment computers."""
    if is_loopback(host) or not any(n.prefixlen == 0 for n in allowed_networks(allow)):
        return None
    return (
        f"remote control: listening on {host} for commands from ANY host "
        f"(remote_control.allow = {list(allow)}): anyone on the network can start and stop "
        "the recording"
    )


def _client_address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    address = ipaddress.ip_address(text.split("%")[0])
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped  # a dual-stack socket's IPv4 client
    return address


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
    allowed: tuple[Network, ...] = ()
    allow_text = ""

    def verify_request(self, request: object, client_address: object) -> bool:
        """Only hosts of the allow-list; any other is closed unanswered, and named."""
        host = str(client_address[0])  # type: ignore[index]
        address = _client_address(host)
        if any(address in network for network in self.allowed):
            return True
        log.warning(
            "remote control: refused a connection from %s (not in remote_control.allow: %s)",
            host,
            self.allow_text,
        )
        return False


class RemoteControlServer:
    """Serves the protocol for ``controller`` on ``host:port`` (0: any free port) in a thread,
    to the hosts in ``allow`` only (see :func:`allowed_networks`)."""

    def __init__(
        self,
        controller: RecorderController,
        host: str = "127.0.0.1",
        port: int = 22345,
        allow: Sequence[str] = LOOPBACK_HOSTS,
    ):
        allowed = allowed_networks(allow)  # before binding: a bad entry binds nothing
        if not allowed:
            raise RemoteControlError(
                "remote control: the allow-list (remote_control.allow) is empty: no script "
                "could connect; name the experiment computers, or leave it to this machine"
            )
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
        self._server.allowed = allowed
        self._server.allow_text = ", ".join(allow)
        self.allow = tuple(allow)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.2},
            name="remote-control", daemon=True,
        )  # fmt: skip

    @property
    def address(self) -> tuple[str, int]:
        host, port = self._server.server_address[:2]
        return str(host), int(port)

    def exposure_warning(self) -> str | None:
        """One line when the port is open beyond loopback to every host, else None."""
        return exposure_warning(self.address[0], self.allow)

    def start(self) -> RemoteControlServer:
        if (warning := self.exposure_warning()) is not None:
            log.warning("%s", warning)
        self._thread.start()
        return self

    def close(self) -> None:
        if self._thread.is_alive():
            self._server.shutdown()
        self._server.server_close()
