"""Check, before any slow start-up work, that the addresses a command will bind are usable.

A bus address follows :mod:`streaming.addresses` (a node binds ``tcp://HOST:PORT`` with a fixed
port, or ``ipc://PATH``); a TCP port counts as taken when
a listening socket holds it (the check binds with ``SO_REUSEADDR``, as ZeroMQ and web servers
do, so connections of an earlier run in TIME_WAIT do not count).
"""

from __future__ import annotations

import errno
import socket

from streaming.addresses import BusAddressError, tcp_host_port

__all__ = ["check_bus_address", "check_port_free"]


def check_port_free(host: str, port: int, what: str) -> None:
    """Bind ``host:port`` briefly; :class:`BusAddressError` if another process holds it."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise BusAddressError(f"{what}: unknown host {host!r} ({exc.strerror})") from None
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise BusAddressError(
                    f"{what}: port {port} on {host} is already in use by another process "
                    "(another demo or pipeline?); stop it or choose another port"
                ) from None
            raise BusAddressError(f"{what}: cannot bind {host}:{port} ({exc.strerror})") from None


def check_bus_address(address: str, what: str) -> None:
    """A bus address this process's node will bind: well-formed and not taken."""
    if address.startswith("ipc://") and len(address) > len("ipc://"):
        return  # a socket file: ZeroMQ replaces a stale one, nothing to probe
    host, port = tcp_host_port(address, what)
    check_port_free(host, port, what)
