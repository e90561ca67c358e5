"""The one bus-address grammar: what a bus accepts, and what a node may bind on a fixed port."""

from __future__ import annotations

import pytest

from streaming.addresses import BusAddressError, check_address, tcp_host_port


@pytest.mark.parametrize(
    "address", ["tcp://127.0.0.1:5556", "tcp://*:0", "tcp://[::1]:*", "ipc:///tmp/x", "inproc://a"]
)
def test_a_bus_takes_every_zeromq_endpoint_it_uses(address: str) -> None:
    assert check_address(address) == address


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        ("tcp://127.0.0.1:5556", ("127.0.0.1", 5556)),
        (" tcp://localhost:1 ", ("localhost", 1)),
        ("tcp://*:80", ("0.0.0.0", 80)),
        ("tcp://[::1]:65535", ("::1", 65535)),
    ],
)
def test_a_fixed_tcp_address_gives_its_host_and_port(
    address: str, expected: tuple[str, int]
) -> None:
    assert tcp_host_port(address, "--bus") == expected


@pytest.mark.parametrize(
    "address",
    ["banana", "tcp://127.0.0.1", "tcp://127.0.0.1:0", "tcp://h:65536", "tcp://h:*", "ipc://x"],
)
def test_a_node_address_without_a_fixed_tcp_port_is_named(address: str) -> None:
    with pytest.raises(BusAddressError, match=r"^--bus '.*' is not a bus address: use tcp://"):
        tcp_host_port(address, "--bus")
