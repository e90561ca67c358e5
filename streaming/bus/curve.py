"""CURVE on the bus: ZeroMQ's encryption and authentication, so that only subscribers whose keys
the publisher knows read the participant's data.

Keys are Z85 text files in ZeroMQ's certificate format (:mod:`zmq.auth`), written by ``eifer
keys NAME``: ``NAME.key`` (public, 0644: hand it out) and ``NAME.key_secret`` (public and secret,
0600: never leaves its computer). A secret key file that group or others may read is refused,
as ``ssh`` refuses such a private key. A publisher (the CURVE server) holds its secret key and a
folder of the public keys of the subscribers allowed to read (``clients``); a subscriber holds its
own secret key and the publisher's public key (``server_key``). Keys are read when a socket opens:
a key added to ``clients`` counts from the publisher's next start. With CURVE off the bus is
exactly :mod:`streaming.bus.pubsub`'s contract, unencrypted.
"""

from __future__ import annotations

import logging
import os
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path

import zmq
import zmq.auth
from zmq.auth.thread import ThreadAuthenticator

from streaming.addresses import PublisherKeys, SubscriberKeys
from streaming.errors import EiferError

__all__ = [
    "PUBLIC_SUFFIX",
    "SECRET_SUFFIX",
    "CurveClient",
    "CurveKeyError",
    "CurveServer",
    "key_paths",
    "load_client_keys",
    "load_public_key",
    "load_secret_key",
    "write_key_pair",
]

PUBLIC_SUFFIX = ".key"  # zmq.auth's names: load_certificates() reads the *.key files of a folder
SECRET_SUFFIX = ".key_secret"
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
_Z85_KEY = re.compile(rb"[0-9a-zA-Z.:+=^!/*?&<>()\[\]{}@%$#-]{40}")

log = logging.getLogger(__name__)


class CurveKeyError(EiferError, ValueError):
    """A CURVE key file is missing, malformed, or a secret key file others may read."""


def key_paths(folder: str | Path, name: str) -> tuple[Path, Path]:
    """``(public, secret)`` file paths of key pair ``name`` in ``folder``."""
    if not _NAME.fullmatch(name):
        raise CurveKeyError(
            f"key name {name!r} is not usable: letters, digits, '_', '.', '-' (at most 64), "
            "e.g. 'pipeline' or 'tablet'"
        )
    folder = Path(folder)
    return folder / f"{name}{PUBLIC_SUFFIX}", folder / f"{name}{SECRET_SUFFIX}"


def _write(path: Path, text: str, mode: int, overwrite: bool) -> None:
    """Write ``text`` to a file created with ``mode`` (never wider, whatever the umask)."""
    flags = os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if overwrite else os.O_EXCL)
    try:
        fd = os.open(path, flags, mode)
    except FileExistsError:
        raise CurveKeyError(
            f"{path} exists: keep it, or write a new pair with --force (every copy of the old "
            "public key must then be replaced)"
        ) from None
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        os.fchmod(fh.fileno(), mode)  # an overwritten file keeps its old mode otherwise
        fh.write(text)


def _certificate(public: bytes, secret: bytes | None, name: str) -> str:
    """zmq.auth's certificate text (ZPL), readable by :func:`zmq.auth.load_certificate`."""
    kind = "secret" if secret is not None else "public"
    lines = [
        f"#   ZeroMQ CURVE {kind} key of {name!r}, written by `eifer keys`",
        "#   " + ("keep it on this computer, readable by its owner only" if secret is not None
                  else "copy it to the other end (a publisher's clients folder, or a "
                  "subscriber's server_key)"),
        "metadata",
        "curve",
        f'    public-key = "{public.decode("ascii")}"',
    ]  # fmt: skip
    if secret is not None:
        lines.append(f'    secret-key = "{secret.decode("ascii")}"')
    return "\n".join(lines) + "\n"


def write_key_pair(folder: str | Path, name: str, *, overwrite: bool = False) -> tuple[Path, Path]:
    """A new key pair ``name`` in ``folder`` (made 0700 if new): ``(public, secret)`` paths.

    The secret file is created 0600, the public one 0644; an existing pair is kept unless
    ``overwrite`` (:class:`CurveKeyError` otherwise)."""
    public_path, secret_path = key_paths(folder, name)
    Path(folder).mkdir(mode=0o700, parents=True, exist_ok=True)
    if not overwrite:
        for path in (public_path, secret_path):
            if path.exists():
                _write(path, "", 0o600, overwrite=False)  # raises the "exists" error
    public, secret = zmq.curve_keypair()
    _write(secret_path, _certificate(public, secret, name), 0o600, overwrite)
    _write(public_path, _certificate(public, None, name), 0o644, overwrite)
    return public_path, secret_path


def _load(path: Path, what: str) -> tuple[bytes, bytes | None]:
    try:
        public, secret = zmq.auth.load_certificate(path)
    except OSError as exc:
        raise CurveKeyError(f"{what} {path}: cannot read it ({exc.strerror})") from None
    except (ValueError, UnicodeDecodeError):
        public, secret = None, None  # malformed: reported below, with what was expected
    if public is None or not _Z85_KEY.fullmatch(public):
        raise CurveKeyError(
            f"{what} {path} holds no CURVE public key: give a file written by `eifer keys`"
        )
    if secret is not None and not _Z85_KEY.fullmatch(secret):
        raise CurveKeyError(f"{what} {path}: its secret key is not a 40-character Z85 key")
    return public, secret


def load_public_key(path: str | Path, what: str = "public key file") -> bytes:
    """The Z85 public key in ``path`` (a ``NAME.key`` or ``NAME.key_secret`` file)."""
    return _load(Path(path), what)[0]


def _check_private(path: Path, what: str) -> None:
    """:class:`CurveKeyError` unless ``path`` is a regular file only its owner may read."""
    try:
        info = path.stat()
    except OSError as exc:
        raise CurveKeyError(f"{what} {path}: cannot read it ({exc.strerror})") from None
    if not stat.S_ISREG(info.st_mode):
        raise CurveKeyError(f"{what} {path} is not a file")
    if os.name == "posix" and info.st_mode & 0o077:
        who = " and ".join(
            w for w, bits in (("group", 0o070), ("others", 0o007)) if info.st_mode & bits
        )
        raise CurveKeyError(
            f"{what} {path} is accessible to {who} (mode {stat.S_IMODE(info.st_mode):04o}): "
            f"a secret key must be readable by its owner only; run: chmod 600 {path}"
        )


def load_secret_key(path: str | Path, what: str = "secret key file") -> tuple[bytes, bytes]:
    """``(public, secret)`` Z85 keys from a ``NAME.key_secret`` file that only its owner may
    read (:class:`CurveKeyError` naming the file and the fix otherwise)."""
    path = Path(path)
    _check_private(path, what)
    public, secret = _load(path, what)
    if secret is None:
        raise CurveKeyError(
            f"{what} {path} holds a public key only: give the {SECRET_SUFFIX} file of the pair"
        )
    return public, secret


def load_client_keys(folder: str | Path) -> frozenset[bytes]:
    """The public keys (``*.key``) in ``folder``: the subscribers a publisher lets in."""
    folder = Path(folder)
    if not folder.is_dir():
        raise CurveKeyError(f"clients folder {folder} is not a folder")
    files = sorted(folder.glob(f"*{PUBLIC_SUFFIX}"))
    if not files:
        raise CurveKeyError(
            f"clients folder {folder} holds no public key ({'*' + PUBLIC_SUFFIX}): copy there "
            "the NAME.key of each subscriber (`eifer keys NAME` on its computer) that may read"
        )
    return frozenset(load_public_key(path, "client key file") for path in files)


@dataclass(frozen=True)
class CurveServer:
    """A publisher's CURVE keys and the subscribers it lets in (Z85 public keys)."""

    public_key: bytes
    secret_key: bytes = field(repr=False)
    clients: frozenset[bytes]
    source: str = ""  # where the client keys came from, for log lines

    @classmethod
    def from_files(cls, secret_key: str | Path, clients: str | Path) -> CurveServer:
        public, secret = load_secret_key(secret_key)
        return cls(public, secret, load_client_keys(clients), str(clients))

    @classmethod
    def from_keys(cls, keys: PublisherKeys) -> CurveServer | None:
        """The configured keys, or None when CURVE is off."""
        return cls.from_files(keys.secret_key, keys.clients) if keys.enabled else None

    def apply(self, socket: zmq.Socket[bytes]) -> None:
        socket.curve_secretkey = self.secret_key
        socket.curve_publickey = self.public_key
        socket.curve_server = True

    def authenticator(self, context: zmq.Context[zmq.Socket[bytes]]) -> ThreadAuthenticator:
        """A started ZAP handler on ``context`` (one per context) admitting :attr:`clients`."""
        auth = ThreadAuthenticator(context, log=logging.getLogger("zmq.auth"))
        auth.start()
        auth.configure_curve_callback("*", _KnownKeys(self.clients, self.source))
        return auth


class _KnownKeys:
    """zmq.auth's credentials provider: admits the known keys, logs each refusal."""

    def __init__(self, clients: frozenset[bytes], source: str) -> None:
        self.clients, self.source = clients, source

    def callback(self, domain: str, key: bytes) -> bool:
        if key in self.clients:
            return True
        log.warning(
            "bus: refused a subscriber whose CURVE key %s... is not in %s",
            key[:8].decode("ascii", "replace"),
            self.source or "the clients folder",
        )
        return False


@dataclass(frozen=True)
class CurveClient:
    """A subscriber's CURVE keys and the public key of the publisher it reads."""

    public_key: bytes
    secret_key: bytes = field(repr=False)
    server_key: bytes

    @classmethod
    def from_files(cls, secret_key: str | Path, server_key: str | Path) -> CurveClient:
        public, secret = load_secret_key(secret_key)
        return cls(public, secret, load_public_key(server_key, "server key file"))

    @classmethod
    def from_keys(cls, keys: SubscriberKeys) -> CurveClient | None:
        """The configured keys, or None when CURVE is off."""
        return cls.from_files(keys.secret_key, keys.server_key) if keys.enabled else None

    def apply(self, socket: zmq.Socket[bytes]) -> None:
        """Set before a connect: libzmq copies the keys into that connection."""
        socket.curve_secretkey = self.secret_key
        socket.curve_publickey = self.public_key
        socket.curve_serverkey = self.server_key


def plain(socket: zmq.Socket[bytes]) -> None:
    """The next connect without CURVE (libzmq: ``CURVE_SERVER = 0`` resets the mechanism)."""
    socket.curve_server = False
