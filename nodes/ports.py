"""Check, before any slow start-up work, that the addresses a command will bind are usable.

A ZeroMQ bus address is ``tcp://HOST:PORT`` (or ``ipc://PATH``); a TCP port counts as taken when
a listening socket holds it (the check binds with ``SO_REUSEADDR``, as ZeroMQ and web servers
do, so connections of an earlier run in TIME_WAIT do not count).
"""

from __future__ import annotations

import errno
import re
import socket

from streaming.errors import EiferError

__all__ = ["AddressError", "check_bus_address", "check_port_free", "parse_tcp_address"]

_TCP = re.compile(r"^tcp://(?P<host>\[[0-9a-fA-F:]+\]|[^:/\[\]]+):(?P<port>\d{1,5})$")


class AddressError(EiferError):
    """A bus address or port is malformed, or already taken by another process."""


def parse_tcp_address(address: str, what: str) -> tuple[str, int]:
    """``tcp://HOST:PORT`` -> (host, port); :class:`AddressError` names ``what`` otherwise."""
    match = _TCP.match(address.strip())
    if match is None or not 0 < int(match["port"]) < 65536:
        raise AddressError(
            f"{what} {address!r} is not a bus address: use tcp://HOST:PORT, "
            "e.g. tcp://127.0.0.1:5556"
        )
    host = match["host"].strip("[]")
    return ("0.0.0.0" if host == "*" else host), int(match["port"])


def check_port_free(host: str, port: int, what: str) -> None:
    """Bind ``host:port`` briefly; :class:`AddressError` if another process holds it."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise AddressError(f"{what}: unknown host {host!r} ({exc.strerror})") from None
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise AddressError(
                    f"{what}: port {port} on {host} is already in use by another process "
                    "(another demo or pipeline?); stop it or choose another port"
                ) from None
            raise AddressError(f"{what}: cannot bind {host}:{port} ({exc.strerror})") from None


def check_bus_address(address: str, what: str) -> None:
    """A bus address this process's node will bind: well-formed and not taken."""
    if address.startswith("ipc://") and len(address) > len("ipc://"):
        return  # a socket file: ZeroMQ replaces a stale one, nothing to probe
    host, port = parse_tcp_address(address, what)
    check_port_free(host, port, what)
