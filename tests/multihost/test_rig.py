"""The rig itself: hosts that reach each other and nothing else, clocks that liblsl really
reads as another computer's, LSL discovery with multicast and, where the switch drops multicast,
with ``KnownPeers``."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from .conftest import NODE_ENV, probe
from .rig import PREFIX, Clock, Rig, faketime_missing, remove_stale

pytestmark = pytest.mark.slow


def _links() -> set[str]:
    out = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True, check=True).stdout
    return {line.split(":")[1].strip().split("@")[0] for line in out.splitlines()}


def _netns() -> set[str]:
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    return {line.split()[0] for line in out.splitlines() if line.strip()}


@pytest.mark.timeout(120)
def test_hosts_reach_each_other_the_machine_is_untouched_and_all_is_removed(
    rig_available, tmp_path
) -> None:
    links_before, netns_before = _links(), _netns()
    # a crashed run's leftovers: a namespace of a process that no longer exists
    stale = f"{PREFIX}-999999999-abcdef-acquisition"
    subprocess.run(["ip", "netns", "add", stale], check=True)
    with Rig(["acquisition", "workstation"], tmp_path) as rig:
        assert stale not in _netns(), "a stale rig is removed before a new one is built"
        assert _links() == links_before, "nothing is added to the machine's own namespace"
        assert set(rig.namespaces()) <= _netns()
        server = rig.start("acquisition", [sys.executable, "-m", "http.server", "8000", "--bind",
                                           rig.address("acquisition")], log="http.log")  # fmt: skip
        reached = rig.run("workstation", _connect(rig.address("acquisition"), 8000), timeout_s=30)
        assert reached.returncode == 0, reached.stderr[-1000:]
        outside = rig.run("workstation", _connect("10.77.1.1", 80, tries=1), timeout_s=30)
        assert "unreachable" in outside.stderr.lower(), "no route leads out of the rig"
    assert server.poll() is not None, "leaving the rig stops its processes"
    assert _netns() == netns_before - {stale} and _links() == links_before
    assert remove_stale() == []


def _connect(address: str, port: int, tries: int = 20) -> list[str]:
    """A command that connects to ``address:port`` (retrying while the server starts)."""
    code = (
        "import socket, sys, time\n"
        f"for i in range({tries}):\n"
        "    try:\n"
        f"        socket.create_connection(({address!r}, {port}), 2).close(); sys.exit(0)\n"
        "    except OSError as exc:\n"
        "        error = exc; time.sleep(0.5)\n"
        "sys.exit(str(error))\n"
    )
    return [sys.executable, "-c", code]


def _offsets(rig: Rig, clock: Clock, seconds: float) -> tuple[np.ndarray, np.ndarray]:
    """``time_correction`` of a stream sent from the acquisition host on ``clock``, read from
    the workstation: (workstation time, offset) pairs."""
    rig.set_clock("acquisition", clock)
    name = f"clock-{clock.offset_s}-{clock.drift_ppm:g}"
    rig.start("acquisition", probe("outlet", name, str(seconds + 20)), log=f"{name}.log",
              env=NODE_ENV)  # fmt: skip
    result = rig.run("workstation", probe("offsets", name, str(seconds)), timeout_s=seconds + 40,
                     env=NODE_ENV)  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    data = json.loads(result.stdout)
    return np.array(data["t"]), np.array(data["offset"])


@pytest.mark.timeout(180)
def test_a_host_clock_shifts_what_liblsl_reads(make_rig) -> None:
    """A time namespace offsets CLOCK_MONOTONIC (liblsl's clock) by whole seconds for the whole
    host, without drift; libfaketime adds a drift (and an offset to the second)."""
    rig = make_rig(["acquisition", "workstation"])
    rig.configure_lsl()
    t, offset = _offsets(rig, Clock(offset_s=7), 6)
    # the value to add to the acquisition host's stamps: its clock runs 7 s ahead
    np.testing.assert_allclose(offset, -7.0, atol=0.005)
    slope_ppm = 1e6 * np.polyfit(t - t[0], offset, 1)[0]
    assert abs(slope_ppm) < 20, slope_ppm

    if faketime_missing():
        pytest.skip(faketime_missing())
    t, offset = _offsets(rig, Clock(offset_s=-5, drift_ppm=200), 8)
    assert np.all(np.abs(offset - 5.0) < 1.5), offset  # -5 s, to the second
    slope_ppm = 1e6 * np.polyfit(t - t[0], offset, 1)[0]
    # the sender's clock runs 200 ppm fast: the correction falls 200 us per second
    assert -300 < slope_ppm < -100, slope_ppm


@pytest.mark.timeout(180)
@pytest.mark.parametrize(
    "block_multicast, known_peers, found",
    [(False, False, True), (True, False, False), (True, True, True)],
    ids=["multicast", "multicast-blocked", "multicast-blocked-known-peers"],
)
def test_lsl_discovery_across_hosts(make_rig, block_multicast, known_peers, found) -> None:
    """Three streams on the acquisition host, resolved from the workstation: with multicast,
    none where the switch drops multicast, all with ``KnownPeers`` naming the hosts."""
    rig = make_rig(["acquisition", "workstation"], block_multicast=block_multicast)
    rig.configure_lsl(known_peers=rig.peers() if known_peers else ())
    names = ["probe-a", "probe-b", "probe-c"]
    for name in names:
        rig.start("acquisition", probe("outlet", name, "40"), log=f"{name}.log", env=NODE_ENV)
    # an outlet on the resolving host itself is always found (loopback): discovery works there
    rig.start("workstation", probe("outlet", "local", "40"), log="local.log", env=NODE_ENV)
    result = rig.run("workstation", probe("resolve", "4"), timeout_s=60, env=NODE_ENV)
    assert result.returncode == 0, result.stderr[-2000:]
    visible = json.loads(result.stdout)
    assert "local" in visible
    assert all((name in visible) == found for name in names), visible


@pytest.mark.timeout(180)
def test_each_host_has_its_own_host_name_in_lsl(make_rig) -> None:
    """Streams of one name on two hosts are told apart as LabRecorder lists them,
    ``"Name (hostname)"``: each host's processes run under its own host name (the machine's
    is untouched)."""
    import socket

    machine = socket.gethostname()
    rig = make_rig(["acquisition", "workstation", "recorder"])
    rig.configure_lsl()
    for role in ("acquisition", "workstation"):
        rig.start(role, probe("outlet", "Twin", "40"), log=f"twin-{role}.log", env=NODE_ENV)
    result = rig.run("recorder", probe("hosts", "4"), timeout_s=60, env=NODE_ENV)
    assert result.returncode == 0, result.stderr[-2000:]
    twins = sorted(host for name, host, _ in json.loads(result.stdout) if name == "Twin")
    assert twins == ["acquisition-pc", "workstation-pc"], result.stdout
    named = rig.run("recorder", ["hostname"], timeout_s=10)
    assert named.stdout.strip() == "recorder-pc"
    assert socket.gethostname() == machine
