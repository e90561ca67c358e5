"""Who may use the display: every request passes :meth:`Access.refusal` first (403 otherwise).

- **Origin**, always: a request that carries an ``Origin`` (a browser's WebSocket always does)
  comes from this display's own page (same scheme, host and port as the request's ``Host``) or
  from an origin in ``allowed_origins``; any other page open in the participant's browser could
  otherwise read the bus through ``/ws``.
- **Host**, on loopback without a token: the ``Host`` header names this machine (``localhost``,
  127.0.0.0/8, ``::1``), so a foreign site whose name was re-pointed at 127.0.0.1 (DNS
  rebinding) is not same-origin with the page it loads.
- **Token**, when bound beyond loopback (generated with :func:`secrets.token_urlsafe` unless
  configured; configured, it applies on any address): given once in the URL
  (``/?token=...``, as Jupyter does), it moves into an HttpOnly, SameSite=Strict cookie, so the
  page's assets, ``/head.bin`` and its WebSocket carry it; scripts may send it as
  ``?token=`` or ``Authorization: token ...``.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from aiohttp import web

from streaming.addresses import is_loopback

__all__ = ["Access", "access_token"]

log = logging.getLogger(__name__)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def access_token(host: str, token: str, open_access: bool) -> str | None:
    """The token the display requires: ``token`` if configured; else a new one when ``host``
    reaches beyond loopback, unless ``open_access`` (then, and on loopback, none)."""
    if token:
        return token
    if open_access or is_loopback(host):
        return None
    return secrets.token_urlsafe(24)


def _host_name(host_header: str) -> str:
    """``Host`` header -> its host: ``[::1]:8080`` -> ``::1``, ``a:80`` -> ``a``."""
    if host_header.startswith("["):
        return host_header[1 : host_header.find("]")] if "]" in host_header else host_header
    return host_header.rsplit(":", 1)[0] if host_header.count(":") == 1 else host_header


@dataclass
class Access:
    """The display's admission rules (see the module docstring); :meth:`middleware` applies them."""

    token: str | None
    allowed_origins: frozenset[str] = frozenset()
    check_host: bool = True  # loopback without a token: the Host must be this machine
    _logged_at: float = field(default=-1e9, repr=False)
    _unlogged: int = field(default=0, repr=False)

    @property
    def cookie(self) -> str:
        """The cookie's name, one per token, so displays on several ports never share it."""
        digest = hashlib.sha256((self.token or "").encode()).hexdigest()[:12]
        return f"eifer-display-{digest}"

    def _token_given(self, request: web.Request) -> tuple[str | None, bool]:
        """(token found, came in the URL) from the query, the cookie or the header."""
        if "token" in request.query:
            return request.query["token"], True
        header = request.headers.get("Authorization", "")
        if header.lower().startswith("token "):
            return header[6:].strip(), False
        return request.cookies.get(self.cookie), False

    def refusal(self, request: web.Request) -> str | None:
        """Why ``request`` is refused, or None."""
        host = request.headers.get("Host", "")
        origin = request.headers.get("Origin")
        if origin is not None and not self._origin_allowed(origin, host):
            return f"Origin {origin[:80]!r} may not use this display (allowed_origins)"
        if self.token is None:
            if self.check_host and not _local_name(_host_name(host)):
                return f"Host {host[:80]!r} is not this machine (the display serves loopback)"
            return None
        given, _ = self._token_given(request)
        if given is None or not hmac.compare_digest(given.encode(), self.token.encode()):
            return (
                "this display needs its access token: open the URL that eifer display printed "
                "(http://HOST:PORT/?token=...)"
            )
        return None

    def _origin_allowed(self, origin: str, host: str) -> bool:
        origin = origin.rstrip("/").lower()
        if origin in self.allowed_origins:
            return True
        return bool(host) and origin in {f"http://{host.lower()}", f"https://{host.lower()}"}

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        reason = self.refusal(request)
        if reason is not None:
            self._log(f"display: refused {request.method} {request.path[:80]} from "
                      f"{request.remote}: {reason}")  # fmt: skip
            raise web.HTTPForbidden(text=f"403: {reason}\n")
        response = await handler(request)
        given, in_url = self._token_given(request)
        if self.token is not None and in_url and not response.prepared:
            response.set_cookie(
                self.cookie, given or "", httponly=True, samesite="Strict", path="/"
            )
        return response

    def _log(self, text: str) -> None:
        """One warning per refusal, at most one a second (a scanner must not flood the log)."""
        now = time.monotonic()
        if now - self._logged_at < 1.0:
            self._unlogged += 1
            return
        more = f" (+{self._unlogged} more refused since)" if self._unlogged else ""
        self._logged_at, self._unlogged = now, 0
        log.warning("%s%s", text, more)


def _local_name(name: str) -> bool:
    name = name.lower().rstrip(".")
    return is_loopback(name) or name.endswith(".localhost")
