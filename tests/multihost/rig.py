"""A lab of several computers on one machine: network namespaces joined by a switch.

Each "host" is a network namespace with its own loopback and one interface (``eth0``, an
address of ``SUBNET``) cabled by a veth pair to a bridge that lives in a namespace of its own
(the switch). Nothing is created in the machine's own namespace: no device, no address, no
route, so the rig cannot reach or disturb anything outside the namespaces it made. Deleting the
namespaces removes every cable and the bridge.

Names carry a prefix, the creating process's id and a random run id
(``eifmh-<pid>-<run>-<role>``): two runs never collide, and a run that crashed (its process
gone) is removed by the next one (:func:`remove_stale`).

Each host has its own host name (``<role>-pc``, a UTS namespace per process: ``unshare --uts``
then ``hostname``), as each computer of a lab has: liblsl's stream info carries it
(``hostname``), LabRecorder lists streams as ``"Name (hostname)"``, and the nodes' default
source ids end with it.

A host may run on its own clock (:class:`Clock`): a whole-host offset of CLOCK_MONOTONIC by a
time namespace (``unshare --time``), or, with a drift, libfaketime's rate (``x1.0001``) on a
clock that starts ``offset_s`` from the machine's. liblsl's ``local_clock`` is
``std::chrono::steady_clock`` (CLOCK_MONOTONIC): both shift what it reads
(``test_rig.py::test_a_host_clock_shifts_what_liblsl_reads``).
"""

from __future__ import annotations

import atexit
import contextlib
import os
import re
import secrets
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from nodes.session import pid_alive

PREFIX = "eifmh"
SUBNET = "10.77.0"  # the rig's own addresses: 10.77.0.<10 + i>/24
# Debian's faketime package (libfaketime), the multi-threaded variant: nodes run threads
LIBFAKETIME = next(
    iter(sorted(Path("/usr/lib").glob("*/faketime/libfaketimeMT.so.1"))),
    Path("/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1"),
)
LSL_PORTS = "UDP 16571 (discovery), TCP+UDP 16572-16604 (one pair per outlet)"

__all__ = ["Clock", "Host", "Rig", "lsl_config", "remove_stale", "unavailable"]


def _ip(*argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *argv], capture_output=True, text=True, check=check, timeout=30)


def unavailable() -> str | None:
    """Why the rig cannot be built here (None: it can): it needs root and ``ip netns``."""
    if os.geteuid() != 0:
        return "the multi-host rig needs root (network namespaces)"
    if shutil.which("ip") is None:
        return "the multi-host rig needs iproute2's `ip`"
    name = f"{PREFIX}-probe-{os.getpid()}"
    try:
        made = _ip("netns", "add", name, check=False)
    except (OSError, subprocess.SubprocessError) as exc:
        return f"`ip netns add` failed: {exc}"
    if made.returncode != 0:
        return f"`ip netns add` failed: {made.stderr.strip()}"
    _ip("netns", "delete", name, check=False)
    return None


def faketime_missing() -> str | None:
    """Why a drifting clock cannot be made here (None: it can)."""
    if not LIBFAKETIME.exists():
        return f"libfaketime not installed ({LIBFAKETIME}; Debian package faketime)"
    return None


def remove_stale() -> list[str]:
    """Delete the namespaces of rigs whose process is gone (a crashed or killed run)."""
    removed = []
    listing = _ip("netns", "list", check=False).stdout
    for line in listing.splitlines():
        name = line.split()[0] if line.split() else ""
        match = re.fullmatch(rf"{PREFIX}-(\d+)-[0-9a-f]+-\w+", name)
        if match and not pid_alive(int(match.group(1))):
            _ip("netns", "delete", name, check=False)
            removed.append(name)
    return removed


@dataclass(frozen=True)
class Clock:
    """A host's clock against the machine's: ``offset_s`` seconds ahead (negative: behind),
    running ``drift_ppm`` parts per million fast.

    Without drift the offset is a time namespace (whole seconds, every process of the host, no
    drift: the kernel's own). With drift it is libfaketime on each process: a clock started
    at the machine's CLOCK_MONOTONIC + ``offset_s`` (to the second) when the process starts,
    running at ``1 + drift_ppm / 1e6``; every process then has its own clock, as LSL allows
    (every stream's stamps are in its sender's clock).
    """

    offset_s: int = 0
    drift_ppm: float = 0.0

    def wrap(self, argv: Sequence[str], env: dict[str, str]) -> list[str]:
        """``argv`` run on this clock (``env`` is updated in place for libfaketime)."""
        if self.drift_ppm:
            start = datetime.fromtimestamp(time.monotonic() + self.offset_s, UTC)
            env.update(
                LD_PRELOAD=str(LIBFAKETIME),
                FAKETIME=f"@{start:%Y-%m-%d %H:%M:%S} x{1 + self.drift_ppm * 1e-6:.9f}",
                FAKETIME_DONT_FAKE_MONOTONIC="0",
                TZ="UTC",
            )
            return list(argv)
        if self.offset_s:
            off = str(self.offset_s)
            return ["unshare", "--time", "--monotonic", off, "--boottime", off, *argv]
        return list(argv)


@dataclass
class Host:
    """One computer of the rig: its namespace, its address, its cable's two ends."""

    role: str
    netns: str
    address: str
    port: str  # the cable's end on the switch (in the switch's namespace)
    hostname: str = ""  # its own host name ("" : the machine's)
    clock: Clock = field(default_factory=Clock)
    lsl_config: Path | None = None


def lsl_config(
    path: Path, *, session_id: str, known_peers: Sequence[str] = (), scope: str = "site"
) -> Path:
    """An ``lsl_api.cfg`` as a lab writes it: IPv4 only, the lab's session id, and the hosts to
    ask by unicast where multicast does not pass (``KnownPeers``)."""
    lines = ["[ports]", "IPv6 = disable", "", "[multicast]", f"ResolveScope = {scope}", ""]
    lines += ["[lab]", f"SessionID = {session_id}"]
    if known_peers:
        lines.append("KnownPeers = {" + ", ".join(known_peers) + "}")
    lines += ["", "[log]", "level = -2", ""]
    path.write_text("\n".join(lines))
    return path


class Rig:
    """Hosts on one switch; processes run inside them. Use as a context manager: leaving it
    (also by an exception or Ctrl-C) stops every process and deletes every namespace."""

    def __init__(
        self, roles: Sequence[str], workdir: Path, *, block_multicast: bool = False
    ) -> None:
        self.run_id = f"{os.getpid()}-{secrets.token_hex(3)}"
        self.workdir = workdir
        self.switch = f"{PREFIX}-{self.run_id}-switch"
        self.block_multicast = block_multicast
        self.hosts: dict[str, Host] = {}
        for i, role in enumerate(roles):
            self.hosts[role] = Host(
                role, f"{PREFIX}-{self.run_id}-{role}", f"{SUBNET}.{10 + i}", f"p{i}",
                hostname=f"{role}-pc",
            )  # fmt: skip
        self.session_id = f"eifer-rig-{self.run_id}"
        self._procs: list[subprocess.Popen[bytes]] = []
        self._closed = False

    # --- building and removing -------------------------------------------------------------

    def __enter__(self) -> Rig:
        atexit.register(self.close)  # a KeyboardInterrupt that skips the finally still cleans
        try:
            self._build()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _build(self) -> None:
        remove_stale()
        _ip("netns", "add", self.switch)
        sw = ("-n", self.switch)
        _ip(*sw, "link", "add", "br0", "type", "bridge")
        _ip(*sw, "link", "set", "br0", "up")
        for host in self.hosts.values():
            _ip("netns", "add", host.netns)
            # both ends are created inside their namespaces: nothing appears in the machine's own
            _ip("link", "add", "eth0", "netns", host.netns, "type", "veth",
                "peer", "name", host.port, "netns", self.switch)  # fmt: skip
            _ip(*sw, "link", "set", host.port, "master", "br0", "up")
            if self.block_multicast:  # the switch passes no multicast (ARP's broadcasts pass)
                subprocess.run(
                    ["ip", "netns", "exec", self.switch, "bridge", "link", "set", "dev",
                     host.port, "mcast_flood", "off"],
                    check=True, capture_output=True, timeout=30,
                )  # fmt: skip
            ns = ("-n", host.netns)
            _ip(*ns, "link", "set", "lo", "up")
            _ip(*ns, "addr", "add", f"{host.address}/24", "dev", "eth0")
            self.link(host.role, up=True)

    def close(self) -> None:
        """Stop every process (its whole process group), then delete every namespace."""
        if self._closed:
            return
        self._closed = True
        for proc in self._procs:
            _signal_group(proc, signal.SIGTERM)
        deadline = time.monotonic() + 15
        for proc in self._procs:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(max(0.1, deadline - time.monotonic()))
            _signal_group(proc, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(5)
        for host in self.hosts.values():
            _ip("netns", "delete", host.netns, check=False)
        _ip("netns", "delete", self.switch, check=False)
        atexit.unregister(self.close)

    def namespaces(self) -> list[str]:
        return [self.switch, *(h.netns for h in self.hosts.values())]

    # --- the network -----------------------------------------------------------------------

    def link(self, role: str, *, up: bool) -> None:
        """Plug (``up``) or unplug a host's cable at the host (``ip link set eth0 up|down``).
        Plugging it back restores its routes, as a lab computer's network manager does: the
        multicast route (liblsl's discovery sends and joins through it) goes with the link.
        Where multicast is blocked the hosts send no limited broadcast either (no route to
        255.255.255.255: liblsl's link scope would otherwise find streams by broadcast)."""
        ns = ("-n", self.hosts[role].netns)
        _ip(*ns, "link", "set", "eth0", "up" if up else "down")
        if up:
            _ip(*ns, "route", "replace", "224.0.0.0/4", "dev", "eth0")
            if not self.block_multicast:
                _ip(*ns, "route", "replace", "255.255.255.255", "dev", "eth0")

    def address(self, role: str) -> str:
        return self.hosts[role].address

    def hostname(self, role: str) -> str:
        return self.hosts[role].hostname

    def peers(self, *roles: str) -> list[str]:
        return [self.hosts[r].address for r in (roles or self.hosts)]

    def configure_lsl(
        self, *, known_peers: Sequence[str] = (), scope: str = "site"
    ) -> dict[str, Path]:
        """One ``lsl_api.cfg`` per host (``LSLAPICFG`` of its processes), this rig's session id."""
        paths = {}
        for host in self.hosts.values():
            path = self.workdir / f"lsl_api-{host.role}.cfg"
            host.lsl_config = lsl_config(
                path, session_id=self.session_id, known_peers=known_peers, scope=scope
            )
            paths[host.role] = path
        return paths

    def set_clock(self, role: str, clock: Clock) -> None:
        self.hosts[role].clock = clock

    # --- processes -------------------------------------------------------------------------

    def command(
        self, role: str, argv: Sequence[str], env: Mapping[str, str] | None = None
    ) -> tuple[list[str], dict[str, str]]:
        """``argv`` as run on host ``role``: in its namespace, under its host name, on its clock,
        with its LSL config."""
        host = self.hosts[role]
        full_env = {**os.environ, **(env or {})}
        full_env.pop("LD_PRELOAD", None)
        if host.lsl_config is not None:
            full_env["LSLAPICFG"] = str(host.lsl_config)
        wrapped = host.clock.wrap(argv, full_env)
        if host.hostname:  # a UTS namespace of its own, named as the host
            set_name = 'hostname "$0" && exec "$@"'
            wrapped = ["unshare", "--uts", "sh", "-c", set_name, host.hostname, *wrapped]
        return ["ip", "netns", "exec", host.netns, *wrapped], full_env

    def start(
        self, role: str, argv: Sequence[str], *, log: str, env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
    ) -> subprocess.Popen[bytes]:  # fmt: skip
        """Start a process on host ``role`` (own process group; output to ``workdir/log``)."""
        command, full_env = self.command(role, argv, env)
        out = open(self.workdir / log, "wb")  # noqa: SIM115 (the process keeps it)
        proc = subprocess.Popen(
            command, env=full_env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
        out.close()
        self._procs.append(proc)
        return proc

    def run(
        self, role: str, argv: Sequence[str], *, timeout_s: float,
        env: Mapping[str, str] | None = None, cwd: Path | None = None,
    ) -> subprocess.CompletedProcess[str]:  # fmt: skip
        """Run a command on host ``role`` to its end (killed with its group at the timeout)."""
        command, full_env = self.command(role, argv, env)
        proc = subprocess.Popen(
            command, env=full_env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True, start_new_session=True,
        )  # fmt: skip
        try:
            out, err = proc.communicate(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            _signal_group(proc, signal.SIGKILL)
            out, err = proc.communicate()
            err += f"\n(killed after {timeout_s:g} s)"
        return subprocess.CompletedProcess(command, proc.returncode, out, err)

    def stop(self, proc: subprocess.Popen[bytes], timeout_s: float = 20) -> int:
        """SIGTERM a process started here and wait for it (SIGKILL after ``timeout_s``)."""
        _signal_group(proc, signal.SIGTERM)
        try:
            return proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            _signal_group(proc, signal.SIGKILL)
            return proc.wait(5)

    def log(self, name: str, tail: int = 3000) -> str:
        path = self.workdir / name
        return path.read_text(errors="replace")[-tail:] if path.exists() else ""


def _signal_group(proc: subprocess.Popen, sig: int) -> None:
    """Signal a process's group (``ip netns exec`` -> ``unshare`` -> python share it)."""
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, sig)


@contextlib.contextmanager
def rig(roles: Sequence[str], workdir: Path, *, block_multicast: bool = False) -> Iterator[Rig]:
    """``with rig(...) as r:``: a built rig, always removed afterwards."""
    with Rig(roles, workdir, block_multicast=block_multicast) as built:
        yield built
