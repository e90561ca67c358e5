"""Bus addresses: the one grammar of a ZeroMQ endpoint, and the nodes' default addresses.

A bus address is ``tcp://HOST:PORT`` (``PORT`` may be ``*`` to bind a free one; ``HOST`` may be
``*`` to bind every interface, or a bracketed IPv6 address), ``ipc://PATH`` or ``inproc://NAME``.
Loopback (:func:`is_loopback`) is ``localhost``, 127.0.0.0/8 and ``::1``: what only this machine
reaches. Every server binds there by default; anything else is an explicit choice that reaches
the network.
"""

from __future__ import annotations

import ipaddress
import re

from pydantic import model_validator

from streaming.config import Config
from streaming.errors import EiferError

__all__ = [
    "DEFAULT_ADDRESS",
    "PROTOCOL_ADDRESS",
    "BusAddressError",
    "PublisherKeys",
    "SubscriberKeys",
    "binds_beyond_loopback",
    "check_address",
    "is_loopback",
    "tcp_host_port",
]

DEFAULT_ADDRESS = "tcp://127.0.0.1:5556"  # the pipeline's PUB socket
PROTOCOL_ADDRESS = "tcp://127.0.0.1:5557"  # the protocol node's PUB socket (``instruction``)
_ADDRESS_PATTERN = re.compile(
    r"tcp://(?P<host>[^\s:/\[\]]+|\[[0-9A-Fa-f:.]+\]):(?P<port>\d{1,5}|\*)|(?:ipc|inproc)://\S+"
)


class BusAddressError(EiferError, OSError):
    """A bus address is malformed, cannot be bound (in use) or cannot be connected to."""


def check_address(address: str) -> str:
    """``address`` if it is a ZeroMQ endpoint this bus can use, else :class:`BusAddressError`."""
    match = _ADDRESS_PATTERN.fullmatch(address) if isinstance(address, str) else None
    if match is None:
        raise BusAddressError(
            f"bus address {address!r} is not valid: give tcp://HOST:PORT "
            f"(e.g. {DEFAULT_ADDRESS}), ipc://PATH or inproc://NAME"
        )
    if match["port"] not in (None, "*") and int(match["port"]) > 65535:
        raise BusAddressError(
            f"bus address {address!r}: port {int(match['port'])} is not in 0..65535"
        )
    return address


def tcp_host_port(address: str, what: str) -> tuple[str, int]:
    """``tcp://HOST:PORT`` with a fixed port (1..65535) -> (host, port), ``*`` as ``0.0.0.0``;
    :class:`BusAddressError` naming ``what`` for anything else."""
    match = _ADDRESS_PATTERN.fullmatch(address.strip())
    port = match["port"] if match is not None else None
    if port is None or port == "*" or not 0 < int(port) < 65536:
        raise BusAddressError(
            f"{what} {address!r} is not a bus address: use tcp://HOST:PORT, e.g. {DEFAULT_ADDRESS}"
        )
    host = match["host"].strip("[]")  # type: ignore[index]  # port is set: the tcp branch matched
    return ("0.0.0.0" if host == "*" else host), int(port)


def is_loopback(host: str) -> bool:
    """Whether ``host`` is reached from this machine only: ``localhost``, 127.0.0.0/8 or ``::1``
    (also IPv4-mapped, ``::ffff:127.0.0.1``). ``*``, ``0.0.0.0``, ``::``, interface names and
    every other name or address reach beyond it."""
    name = host.strip().strip("[]").lower()
    if name == "localhost":
        return True
    try:
        address = ipaddress.ip_address(name)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_loopback


def binds_beyond_loopback(address: str) -> bool:
    """Whether binding bus ``address`` listens beyond this machine: a ``tcp://`` address whose
    host is not loopback (``ipc://`` and ``inproc://`` never leave it)."""
    match = _ADDRESS_PATTERN.fullmatch(address.strip())
    if match is None or match["host"] is None:
        return False
    return not is_loopback(match["host"])


class PublisherKeys(Config):
    """CURVE on a publisher's bus socket (``eifer keys``; :mod:`streaming.bus.curve`): both
    files, or neither (unencrypted, anyone who reaches the port reads)."""

    secret_key: str = ""  # this publisher's NAME.key_secret
    clients: str = ""  # folder of the NAME.key files of the subscribers allowed to read

    @model_validator(mode="after")
    def _both_or_neither(self) -> PublisherKeys:
        if bool(self.secret_key) != bool(self.clients):
            missing = "clients" if self.secret_key else "secret_key"
            raise ValueError(f"CURVE needs both secret_key and clients; {missing} is unset")
        return self

    @property
    def enabled(self) -> bool:
        return bool(self.secret_key)


class SubscriberKeys(Config):
    """CURVE on a subscriber's connection to one publisher: both files, or neither."""

    secret_key: str = ""  # this subscriber's NAME.key_secret
    server_key: str = ""  # the publisher's NAME.key

    @model_validator(mode="after")
    def _both_or_neither(self) -> SubscriberKeys:
        if bool(self.secret_key) != bool(self.server_key):
            missing = "server_key" if self.secret_key else "secret_key"
            raise ValueError(f"CURVE needs both secret_key and server_key; {missing} is unset")
        return self

    @property
    def enabled(self) -> bool:
        return bool(self.secret_key)
