"""Who may use the display: on loopback the page as before, but only from its own origin (and
host); beyond loopback only with its access token; a CURVE bus read with the display's keys.
Real servers on 127.0.0.1 and 127.0.0.2 (all of 127/8 is this machine's loopback)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from aiohttp import ClientSession, CookieJar, WSServerHandshakeError

from nodes.display.access import access_token
from nodes.display.server import DisplayConfig, DisplayServer, ServerThread
from streaming.bus.curve import CurveServer, write_key_pair
from streaming.config import ConfigError, validate

from .conftest import FramePublisher

TOKEN = "lab-tablet-token-1234"


async def _first_ws_topic(url: str, **kwargs) -> str:
    """The topic of the first message ``/ws`` sends (``hello``), or the handshake's error."""
    page, _, query = url.partition("?")
    ws_url = page.replace("http://", "ws://") + "ws" + (f"?{query}" if query else "")
    async with ClientSession() as session, session.ws_connect(ws_url, **kwargs) as ws:
        return json.loads((await ws.receive(timeout=5)).data)["topic"]


async def _ws_status(url: str, **kwargs) -> int:
    """101 for an accepted WebSocket, else the HTTP status that refused it."""
    try:
        await _first_ws_topic(url, **kwargs)
    except WSServerHandshakeError as exc:
        return exc.status
    return 101


async def _get(url: str, **kwargs) -> tuple[int, str]:
    async with ClientSession() as session, session.get(url, **kwargs) as response:
        return response.status, await response.text()


def test_on_loopback_the_page_works_without_a_token(publisher, display_config) -> None:
    with ServerThread(display_config(publisher.address)) as server:
        url = server.server.url
        assert server.server.open_url == url and server.server.access.token is None
        assert asyncio.run(_get(url))[0] == 200
        assert asyncio.run(_first_ws_topic(url)) == "hello"  # no Origin: a script, as before


def test_a_websocket_from_a_foreign_page_is_refused_its_own_page_is_not(
    publisher, display_config
) -> None:
    config = display_config(publisher.address, allowed_origins=["https://lab-portal:8443"])
    with ServerThread(config) as server:
        url = server.server.url  # http://127.0.0.1:PORT/
        own = url.rstrip("/")
        assert asyncio.run(_ws_status(url, origin=own)) == 101
        assert asyncio.run(_ws_status(url, origin="https://lab-portal:8443")) == 101
        for foreign in ("http://evil.example", "null", "http://127.0.0.1:1", own + ".evil"):
            assert asyncio.run(_ws_status(url, origin=foreign)) == 403, foreign
        status, text = asyncio.run(_get(url + "health", headers={"Origin": "http://evil.example"}))
        assert status == 403 and "Origin 'http://evil.example'" in text


def test_on_loopback_a_foreign_host_name_is_refused(publisher, display_config) -> None:
    """DNS rebinding: evil.example re-pointed at 127.0.0.1 is same-origin with its own page,
    but the Host it sends is not this machine's."""
    with ServerThread(display_config(publisher.address)) as server:
        url = server.server.url
        port = url.rstrip("/").rsplit(":", 1)[1]
        status, text = asyncio.run(_get(url, headers={"Host": f"evil.example:{port}"}))
        assert status == 403 and "is not this machine" in text
        assert asyncio.run(_get(url, headers={"Host": f"localhost:{port}"}))[0] == 200


def test_with_a_token_every_request_needs_it_and_the_url_moves_it_into_a_cookie(
    publisher, display_config
) -> None:
    config = display_config(publisher.address, host="127.0.0.2", token=TOKEN)
    with ServerThread(config) as server:
        url = server.server.url
        assert url.startswith("http://127.0.0.2:")
        assert server.server.open_url == f"{url}?token={TOKEN}"
        for path in ("", "health", "head.json", "static/app.js"):
            status, text = asyncio.run(_get(url + path))
            assert status == 403 and "needs its access token" in text, path
        assert asyncio.run(_ws_status(url)) == 403
        assert asyncio.run(_ws_status(url + "?token=wrong-token-0000")) == 403
        assert asyncio.run(_get(url + "health?token=wrong-token-0000"))[0] == 403

        async def as_the_tablet() -> tuple[int, int, str]:
            # a browser keeps cookies of IP-address hosts; aiohttp's client only when unsafe
            async with ClientSession(cookie_jar=CookieJar(unsafe=True)) as session:
                async with session.get(server.server.open_url) as page:
                    opened = page.status
                async with session.get(url + "static/app.js") as asset:  # the cookie, now
                    asset_status = asset.status
                ws_url = url.replace("http://", "ws://") + "ws"
                async with session.ws_connect(ws_url, origin=url.rstrip("/")) as ws:
                    topic = json.loads((await ws.receive(timeout=5)).data)["topic"]
            return opened, asset_status, topic

        assert asyncio.run(as_the_tablet()) == (200, 200, "hello")
        headers = {"Authorization": f"token {TOKEN}"}
        assert asyncio.run(_get(url + "health", headers=headers))[0] == 200
        assert asyncio.run(_ws_status(url + f"?token={TOKEN}")) == 101
        foreign = {"origin": "http://evil.example"}
        assert asyncio.run(_ws_status(url + f"?token={TOKEN}", **foreign)) == 403


def test_beyond_loopback_a_token_is_generated_unless_open_access_which_is_warned() -> None:
    first, second = access_token("0.0.0.0", "", False), access_token("192.168.1.20", "", False)
    assert first and second and first != second and len(first) >= 32
    assert access_token("127.0.0.2", "", False) is None  # loopback: as before
    assert access_token("::1", "", False) is None
    assert access_token("127.0.0.1", TOKEN, False) == TOKEN  # configured: on any host
    assert access_token("0.0.0.0", "", True) is None
    exposed = DisplayServer(DisplayConfig(host="0.0.0.0", open_access=True))  # not started
    assert "beyond loopback without an access token" in (exposed.exposure_warning() or "")
    assert DisplayServer(DisplayConfig(host="0.0.0.0")).exposure_warning() is None
    assert DisplayServer(DisplayConfig()).exposure_warning() is None


@pytest.mark.parametrize(
    ("setting", "complaint"),
    [
        ({"token": "short"}, "at least 8 URL-safe characters"),
        ({"token": "has space in it"}, "at least 8 URL-safe characters"),
        ({"allowed_origins": ["tablet:8080"]}, "is not an origin"),
        ({"allowed_origins": ["http://tablet:8080/page"]}, "is not an origin"),
        ({"token": TOKEN, "open_access": True}, "contradict"),
    ],
)
def test_bad_access_settings_are_named(setting: dict, complaint: str) -> None:
    with pytest.raises(ConfigError, match=complaint):
        validate(DisplayConfig, setting, "display.toml")


def test_the_display_reads_a_curve_bus_with_its_keys(tmp_path: Path, display_config) -> None:
    for name in ("pipeline", "display"):
        write_key_pair(tmp_path, name)
    clients = tmp_path / "clients"
    clients.mkdir()
    (clients / "display.key").write_bytes((tmp_path / "display.key").read_bytes())
    curve = CurveServer.from_files(tmp_path / "pipeline.key_secret", clients)
    publisher = FramePublisher(curve=curve).start()
    try:
        keys = {
            "secret_key": str(tmp_path / "display.key_secret"),
            "server_key": str(tmp_path / "pipeline.key"),
        }
        with ServerThread(display_config(publisher.address, bus_curve=keys)) as server:
            assert _wait_for_messages(server)
        with ServerThread(display_config(publisher.address)) as server:  # no keys: nothing
            assert not _wait_for_messages(server, timeout_s=1.5)
    finally:
        publisher.stop()


def _wait_for_messages(server: ServerThread, timeout_s: float = 5.0) -> bool:
    import time

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if server.call(lambda: server.server.bus_messages) > 5:
            return True
        time.sleep(0.1)
    return False
