"""CURVE on the bus: only subscribers whose keys the publisher holds read it; keys from
``eifer keys``, secret files readable by their owner only. Real sockets on loopback."""

from __future__ import annotations

import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from streaming.addresses import PublisherKeys, SubscriberKeys, binds_beyond_loopback, is_loopback
from streaming.bus.curve import CurveClient, CurveKeyError, CurveServer, write_key_pair
from streaming.bus.pubsub import Publisher, Subscriber
from streaming.config import ConfigError, validate

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def keys(tmp_path: Path) -> Path:
    """A lab's keys: the pipeline's pair, a known subscriber's (its public key in the
    pipeline's clients folder) and a stranger's (not there)."""
    for name in ("pipeline", "tablet", "stranger"):
        write_key_pair(tmp_path / name, name)
    clients = tmp_path / "clients"
    clients.mkdir()
    (clients / "tablet.key").write_bytes((tmp_path / "tablet" / "tablet.key").read_bytes())
    return tmp_path


def _secret(keys: Path, name: str) -> Path:
    return keys / name / f"{name}.key_secret"


def _public(keys: Path, name: str) -> Path:
    return keys / name / f"{name}.key"


def _received(publisher: Publisher, subscribers: dict[str, Subscriber], seconds: float) -> dict:
    """Publish for ``seconds`` while every subscriber reads; messages each one got."""
    got = dict.fromkeys(subscribers, 0)
    deadline = time.monotonic() + seconds
    frame = 0
    while time.monotonic() < deadline:
        publisher.publish("status", {"n": frame}, frame=frame)
        frame += 1
        for name, subscriber in subscribers.items():
            while subscriber.receive(0.005) is not None:
                got[name] += 1
    return got


def test_only_a_subscriber_with_a_known_key_reads_a_curve_publisher(keys: Path) -> None:
    server = CurveServer.from_files(_secret(keys, "pipeline"), keys / "clients")
    pipeline_key = _public(keys, "pipeline")
    with Publisher("tcp://127.0.0.1:*", curve=server) as publisher:
        address = publisher.address
        subscribers = {
            "known": Subscriber(
                address, curve=CurveClient.from_files(_secret(keys, "tablet"), pipeline_key)
            ),
            "no keys": Subscriber(address),
            "unknown key": Subscriber(
                address, curve=CurveClient.from_files(_secret(keys, "stranger"), pipeline_key)
            ),
            "wrong server key": Subscriber(
                address,
                curve=CurveClient.from_files(_secret(keys, "tablet"), _public(keys, "stranger")),
            ),
        }
        try:
            got = _received(publisher, subscribers, seconds=1.5)
        finally:
            for subscriber in subscribers.values():
                subscriber.close()
    assert got["known"] > 10
    assert got["no keys"] == got["unknown key"] == got["wrong server key"] == 0
    for name in ("no keys", "unknown key", "wrong server key"):
        assert subscribers[name].handshake_failures >= 1, name  # said, not silent
        assert subscribers[name].disconnects == 0, name  # no data was ever lost: none came


def test_a_refused_subscriber_is_logged_by_the_publisher_and_told_why(
    keys: Path, caplog: pytest.LogCaptureFixture
) -> None:
    server = CurveServer.from_files(_secret(keys, "pipeline"), keys / "clients")
    stranger = CurveClient.from_files(_secret(keys, "stranger"), _public(keys, "pipeline"))
    with (
        Publisher("tcp://127.0.0.1:*", curve=server) as publisher,
        Subscriber(publisher.address, curve=stranger) as subscriber,
    ):
        _received(publisher, {"stranger": subscriber}, seconds=0.5)
    text = caplog.text
    assert "refused a subscriber whose CURVE key " + stranger.public_key[:8].decode() in text
    assert f"handshake with {publisher.address} failed" in text
    assert "refused this subscriber's key" in text


def test_one_subscriber_reads_a_curve_publisher_and_a_plain_one_by_address(keys: Path) -> None:
    server = CurveServer.from_files(_secret(keys, "pipeline"), keys / "clients")
    tablet = CurveClient.from_files(_secret(keys, "tablet"), _public(keys, "pipeline"))
    with (
        Publisher("tcp://127.0.0.1:*", curve=server) as secured,
        Publisher("tcp://127.0.0.1:*") as plain,
        Subscriber([secured.address, plain.address], curve={secured.address: tablet}) as sub,
    ):
        seen: set[str] = set()
        deadline = time.monotonic() + 3.0
        while seen != {"curve", "plain"} and time.monotonic() < deadline:
            secured.publish("status", {"from": "curve"})
            plain.publish("status", {"from": "plain"})
            while (message := sub.receive(0.02)) is not None:
                seen.add(message.fields["from"])
    assert seen == {"curve", "plain"}


def test_a_secret_key_file_others_can_read_is_refused_with_the_fix(keys: Path) -> None:
    secret = _secret(keys, "tablet")
    secret.chmod(0o644)
    with pytest.raises(CurveKeyError) as caught:
        CurveClient.from_files(secret, _public(keys, "pipeline"))
    message = str(caught.value)
    assert str(secret) in message and "group and others" in message and "0644" in message
    assert f"chmod 600 {secret}" in message
    secret.chmod(0o640)
    with pytest.raises(CurveKeyError, match="accessible to group "):
        CurveServer.from_files(secret, keys / "clients")


def test_key_files_that_are_not_keys_are_named(keys: Path, tmp_path: Path) -> None:
    with pytest.raises(CurveKeyError, match="holds a public key only"):
        _public(keys, "tablet").chmod(0o600)
        CurveClient.from_files(_public(keys, "tablet"), _public(keys, "pipeline"))
    garbage = tmp_path / "garbage.key"
    garbage.write_text("not a key\n")
    with pytest.raises(CurveKeyError, match=f"{garbage} holds no CURVE public key"):
        CurveClient.from_files(_secret(keys, "tablet"), garbage)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(CurveKeyError, match=f"clients folder {empty} holds no public key"):
        CurveServer.from_files(_secret(keys, "pipeline"), empty)
    with pytest.raises(CurveKeyError, match=r"client key file .*garbage\.key holds no CURVE"):
        CurveServer.from_files(_secret(keys, "pipeline"), tmp_path)
    with pytest.raises(CurveKeyError, match="cannot read it"):
        CurveClient.from_files(tmp_path / "missing.key_secret", _public(keys, "pipeline"))


def test_half_a_curve_config_is_an_error_naming_what_is_missing(keys: Path) -> None:
    assert CurveServer.from_keys(PublisherKeys()) is None  # off: the plain bus
    assert CurveClient.from_keys(SubscriberKeys()) is None
    secret = str(_secret(keys, "pipeline"))
    with pytest.raises(ConfigError, match=r"(?s)pipeline\.toml: .*clients is unset"):
        validate(PublisherKeys, {"secret_key": secret}, "pipeline.toml")
    with pytest.raises(ConfigError, match="secret_key is unset"):
        validate(SubscriberKeys, {"server_key": str(_public(keys, "pipeline"))})
    keys_on = validate(PublisherKeys, {"secret_key": secret, "clients": str(keys / "clients")})
    assert CurveServer.from_keys(keys_on) is not None


def test_eifer_keys_writes_a_private_secret_file_and_keeps_an_existing_pair(
    tmp_path: Path,
) -> None:
    def keys(*extra: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "nodes.cli", "keys", "pipeline", "--dir", "k", *extra]
        return subprocess.run(
            command, cwd=tmp_path, capture_output=True, text=True, timeout=60,
            env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"},
        )  # fmt: skip

    first = keys()
    assert first.returncode == 0, first.stderr
    public, secret = tmp_path / "k" / "pipeline.key", tmp_path / "k" / "pipeline.key_secret"
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600
    assert stat.S_IMODE(public.stat().st_mode) == 0o644
    assert stat.S_IMODE((tmp_path / "k").stat().st_mode) == 0o700
    client = CurveClient.from_files(secret, public)  # a pair that loads
    assert client.server_key == client.public_key
    assert "secret" not in repr(client).replace("secret_key", "")  # never printed
    before = secret.read_bytes()
    again = keys()
    assert again.returncode == 1 and "exists" in again.stderr and "--force" in again.stderr
    assert secret.read_bytes() == before
    secret.chmod(0o644)
    forced = keys("--force")
    assert forced.returncode == 0, forced.stderr
    assert secret.read_bytes() != before and stat.S_IMODE(secret.stat().st_mode) == 0o600


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.0.0.2", True),
        ("localhost", True),
        ("::1", True),
        ("[::1]", True),
        ("::ffff:127.0.0.1", True),
        ("0.0.0.0", False),
        ("*", False),
        ("::", False),
        ("192.168.1.20", False),
        ("eth0", False),
        ("workstation.lab", False),
    ],
)
def test_loopback_is_127_0_0_0_8_and_ipv6_1_only(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_a_bus_address_binds_beyond_loopback_unless_its_host_is_loopback() -> None:
    assert not binds_beyond_loopback("tcp://127.0.0.1:5556")
    assert not binds_beyond_loopback("tcp://[::1]:*")
    assert not binds_beyond_loopback("ipc:///tmp/bus") and not binds_beyond_loopback("inproc://b")
    assert binds_beyond_loopback("tcp://*:5556") and binds_beyond_loopback("tcp://10.0.0.2:1")
