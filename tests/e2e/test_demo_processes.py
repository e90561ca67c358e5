"""The demo's children never outlive it, however it ends; its ports are checked before the slow
start-up; bad options end in one line. Real processes, real ports, psutil to see what is left."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from nodes.session import PID_FILE, WORK_PREFIX, remove_stale_work_folders

REPO = Path(__file__).resolve().parents[2]
CLI = [sys.executable, "-m", "nodes.cli"]
ENV = {**os.environ, "PYTHONUNBUFFERED": "1"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _listening(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(1.0)
        return s.connect_ex(("127.0.0.1", port)) == 0


def _bindable(port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def _read_until(process: subprocess.Popen, pattern: str, timeout_s: float) -> str:
    """The demo's output up to the first line matching ``pattern`` (fails the test otherwise)."""
    deadline, seen = time.monotonic() + timeout_s, []
    os.set_blocking(process.stdout.fileno(), False)
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if line:
            seen.append(line)
            if re.search(pattern, line):
                return "".join(seen)
        elif process.poll() is not None:
            break
        else:
            time.sleep(0.05)
    pytest.fail(f"no line matching {pattern!r} within {timeout_s:.0f} s:\n{''.join(seen)}")


def _descendants(pid: int) -> list[psutil.Process]:
    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []


def _wait_for(condition, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.2)
    return condition()


STOPS = [
    "SIGTERM",
    "SIGHUP",
    "timeout",
    "SIGKILL",
    "Ctrl-C during calibration",
    "Ctrl-C while the models load, started by a script",
]


def _ignore_sigint() -> None:
    """As a shell script's background job starts: SIGINT ignored."""
    os.setsid()
    signal.signal(signal.SIGINT, signal.SIG_IGN)


@pytest.mark.slow
@pytest.mark.parametrize("how", STOPS)
def test_no_child_outlives_the_demo(how, tmp_path):
    bus, protocol, display = _free_port(), _free_port(), _free_port()
    models = [] if "models" in how else ["--no-models"]
    demo = [*CLI, "demo", *models, "--bus", f"tcp://127.0.0.1:{bus}",
            "--protocol-bus", f"tcp://127.0.0.1:{protocol}", "--display-port", str(display)]  # fmt: skip
    if how == "timeout":  # `timeout` passes the SIGTERM it gets on to the demo
        demo = ["timeout", "600", *demo]
    process = subprocess.Popen(
        demo, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=REPO, env=ENV,
        preexec_fn=_ignore_sigint if "script" in how else os.setsid,
    )  # fmt: skip
    try:
        out = _read_until(process, r"logs in ", 60)
        work = Path(re.search(r"logs in (\S+)", out)[1])
        if "models load" in how:
            assert _wait_for(lambda: len(_descendants(process.pid)) >= 3, 60)
            children = _descendants(process.pid)
            process.send_signal(signal.SIGINT)
        elif how == "Ctrl-C during calibration":
            _read_until(process, r"^calibration:", 120)
            children = _descendants(process.pid)
            process.send_signal(signal.SIGINT)
        else:
            _read_until(process, r"press Ctrl-C to stop", 120)
            ports = (bus, protocol, display)
            assert _wait_for(lambda: all(_listening(p) for p in ports), 60), "nodes not up"
            children = _descendants(process.pid)
            signum = {"SIGHUP": signal.SIGHUP, "SIGKILL": signal.SIGKILL}.get(how, signal.SIGTERM)
            demo_pid = process.pid
            if how == "timeout":
                demo_pid = next(c.pid for c in children if "nodes.cli" in " ".join(c.cmdline()))
                assert psutil.Process(demo_pid).ppid() == process.pid
            os.kill(process.pid if how == "timeout" else demo_pid, signum)
        process.wait(60)
    finally:
        if process.poll() is None:
            process.kill()
    assert children, "the demo had started no node"
    _, alive = psutil.wait_procs(children, timeout=30)
    assert not alive, f"left running after {how}: {[p.cmdline()[3:6] for p in alive]}"
    for port in (bus, protocol, display):
        assert _wait_for(lambda p=port: _bindable(p), 10), f"port {port} still taken"
    if how == "SIGKILL":  # no chance to clean up: the next demo removes the folder
        assert (work / PID_FILE).is_file()
        assert work in remove_stale_work_folders(work.parent)
    assert not work.exists(), f"{work} left behind"


def test_a_child_node_ends_when_its_parent_is_killed(tmp_path):
    """PR_SET_PDEATHSIG + the parent watchdog, without the demo: a parent starts a node through
    ProcessGroup and is SIGKILLed; the node ends within seconds."""
    script = (
        "import sys, time\n"
        "from pathlib import Path\n"
        "from nodes.processes import ProcessGroup\n"
        f"group = ProcessGroup(Path({str(tmp_path)!r}))\n"
        f"child = group.start('listen', ['listen', '--address', 'tcp://127.0.0.1:{_free_port()}'])\n"
        "print(child.process.pid, flush=True)\n"
        "time.sleep(600)\n"
    )
    parent = subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, cwd=REPO, env=ENV
    )
    try:
        child = psutil.Process(int(parent.stdout.readline()))
        assert _wait_for(lambda: "nodes.cli" in " ".join(child.cmdline()), 30)
        time.sleep(1.0)  # the node is running (its start-up is not what is tested)
        assert child.is_running()
        parent.kill()
        parent.wait(10)
        _, alive = psutil.wait_procs([child], timeout=20)
        assert not alive, "the node outlived its parent"
    finally:
        if parent.poll() is None:
            parent.kill()


def test_stale_work_folders_of_killed_demos_are_removed_and_others_kept(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale, running, kept = (tmp_path / f"{WORK_PREFIX}{n}" for n in ("a", "b", "c"))
    for folder in (stale, running, kept):
        folder.mkdir()
    (stale / PID_FILE).write_text(str(dead.pid))
    (running / PID_FILE).write_text(str(os.getpid()))
    # `kept`: no pid file (a failed demo keeps its logs)
    assert remove_stale_work_folders(tmp_path) == [stale]
    assert not stale.exists() and running.exists() and kept.exists()


def _run_cli(*argv: str, timeout_s: float = 60) -> tuple[int, str, float]:
    start = time.monotonic()
    done = subprocess.run(
        [*CLI, *argv], capture_output=True, text=True, cwd=REPO, env=ENV, timeout=timeout_s
    )
    return done.returncode, done.stderr + done.stdout, time.monotonic() - start


def test_a_taken_bus_port_stops_the_demo_at_once_with_one_line():
    with socket.socket() as other:  # another pipeline holds the port
        other.bind(("127.0.0.1", 0))
        other.listen()
        port = other.getsockname()[1]
        code, output, took_s = _run_cli("demo", "--bus", f"tcp://127.0.0.1:{port}")
    assert code == 1 and "Traceback" not in output, output
    assert re.fullmatch(rf"eifer demo: error: --bus: port {port} .*in use.*\n", output), output
    assert took_s < 15, f"took {took_s:.1f} s: the check must come before the models"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["demo", "--bus", "banana"], r"eifer demo: error: --bus 'banana' is not a bus address"),
        (["demo", "--protocol-bus", "tcp://127.0.0.1:99999"], r"--protocol-bus .* not a bus"),
        (["demo", "--display-port", "0"], r"--display-port 0: not a TCP port"),
        (["listen", "--log-level", "nonsense"], r"'nonsense' is not a logging level"),
    ],
)
def test_bad_options_end_in_one_line(argv, message):
    if argv[0] == "demo":  # free ports for the options not under test (5556/5557 may be busy)
        for option in ("--bus", "--protocol-bus"):
            if option not in argv:
                argv = [*argv, option, f"tcp://127.0.0.1:{_free_port()}"]
        if "--display-port" not in argv:
            argv = [*argv, "--display-port", str(_free_port())]
    code, output, _ = _run_cli(*argv)
    assert code != 0 and "Traceback" not in output, output
    assert re.search(message, output), output
    errors = [line for line in output.splitlines() if "error" in line]
    assert len(errors) == 1, output  # (argparse prints its usage above a bad option's line)
