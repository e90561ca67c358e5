"""``eifer demo`` is ``eifer session --config demo``: the same nodes, started with the same
arguments, each demo option a ``--set`` of ``configs/sessions/demo.toml``. Planned in process,
then both started for real (child processes seen with psutil)."""

from __future__ import annotations

import argparse
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil
import pytest

from nodes import demo
from nodes.common import load_option_config
from nodes.session import load_session, session_file
from nodes.session_config import SessionConfig, node_argv

REPO = Path(__file__).resolve().parents[2]
CLI = [sys.executable, "-m", "nodes.cli"]
VALUES = {"work": "/w", "demo_bundle": "/w/demo-bundle", "demo_profile": "/w/demo-profile.json"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _plan(config: SessionConfig) -> dict[str, tuple[str, list[str]]]:
    """Each enabled node: when it starts and its ``eifer`` arguments."""
    return {
        name: (node.start, node_argv(node, VALUES)) for name, node in config.enabled_nodes().items()
    }


def _demo_config(*argv: str) -> SessionConfig:
    parser = argparse.ArgumentParser()
    demo.add_arguments(parser)
    args = parser.parse_args(list(argv))
    load_option_config(args)
    return load_session(demo.DEMO_SESSION, demo.session_overrides(args))


def test_eifer_demo_plans_what_eifer_session_config_demo_plans() -> None:
    shipped = load_session(session_file("demo"), [])
    assert _plan(_demo_config()) == _plan(shipped) == _plan(load_session(session_file(None), []))
    assert list(_plan(shipped)) == ["display", "emg", "camera", "pipeline", "protocol"]

    options = ["--bus", "tcp://127.0.0.1:1234", "--protocol-bus", "tcp://127.0.0.1:1235",
               "--display-port", "1236", "--participant-seed", "9", "--camera-size", "320x180",
               "--camera-rate", "10", "--occlusion", "none", "--protocol-speed", "3",
               "--suffix", "t1", "--weights", "w", "--every", "4", "--no-models",
               "--headless"]  # fmt: skip
    sets = ['params.bus="tcp://127.0.0.1:1234"', 'params.protocol_bus="tcp://127.0.0.1:1235"',
            "params.display_port=1236", "params.participant_seed=9",
            'params.camera_size="320x180"', "params.camera_rate=10.0", 'params.occlusion="none"',
            "params.protocol_speed=3.0", 'params.suffix="t1"', 'params.weights="w"',
            "view.every=4", "prepare.demo.models=false", "nodes.display.enabled=false"]  # fmt: skip
    given, session = _demo_config(*options), load_session(session_file("demo"), sets)
    assert _plan(given) == _plan(session)
    assert (given.view, given.prepare, given.params) == (
        session.view,
        session.prepare,
        session.params,
    )
    assert "display" not in _plan(given) and given.prepare.demo is not None
    assert not given.prepare.demo.models and given.view.every == 4
    argv = dict(_plan(given))["camera"][1]
    assert argv[:8] == ["node", "camera", "--source", "participant", "--name", "Camera-t1",
                        "--size", "320x180"]  # fmt: skip
    assert "rate_hz=10.0" in argv and 'occlusion="none"' in argv


class _Run:
    """A session in a child process, its output read all along."""

    def __init__(self, argv: list[str], tmp: Path) -> None:
        env = {**os.environ, "PYTHONUNBUFFERED": "1", "TMPDIR": str(tmp)}
        self.process = subprocess.Popen(
            [*CLI, *argv], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            cwd=REPO, env=env, preexec_fn=os.setsid,
        )  # fmt: skip
        self.lines: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        self.lines.extend(self.process.stdout)

    def wait_for(self, pattern: str, timeout_s: float) -> str:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and self.process.poll() is None:
            match = re.search(pattern, "".join(self.lines), re.MULTILINE)
            if match:
                return match[1] if match.groups() else match[0]
            time.sleep(0.2)
        pytest.fail(
            f"no {pattern!r} within {timeout_s:.0f} s:\n{''.join(self.lines)[-3000:]}"
            + self._node_logs()
        )

    def _node_logs(self) -> str:
        """The tail of each node's log (the session names their folder), for a failure."""
        match = re.search(r"logs in (\S+)$", "".join(self.lines), re.MULTILINE)
        if not match:
            return ""
        tails = []
        for log in sorted(Path(match[1]).glob("*.log")):
            lines = log.read_text(errors="replace").splitlines()[-12:]
            tails.append(f"\n--- {log.name} ---\n" + "\n".join(lines))
        return "".join(tails)

    def nodes(self) -> list[psutil.Process]:
        return psutil.Process(self.process.pid).children(recursive=True)


def _argvs(run: _Run, work: str, replace: dict[str, str]) -> list[list[str]]:
    """The nodes' ``eifer`` arguments (``python -m nodes.cli ARGS``), this run's names
    replaced by the same tokens."""
    argvs = []
    for node in run.nodes():
        cmdline = node.cmdline()
        if cmdline[1:3] != ["-m", "nodes.cli"]:
            continue
        text = "\x00".join(cmdline[3:]).replace(work, "{work}")
        for old, new in replace.items():
            text = text.replace(old, new)
        argvs.append(text.split("\x00"))
    return sorted(argvs)


@pytest.mark.slow
@pytest.mark.timeout(900)  # ~35 s alone; two demos at once take minutes on 2 loaded cores
def test_eifer_demo_and_eifer_session_config_demo_start_the_same_nodes(tmp_path: Path) -> None:
    """Both started side by side (their own ports and stream names, which are then replaced by
    the same tokens) until the protocol starts with the first frame; then SIGTERM ends each
    with every node."""
    ports = {name: [_free_port() for _ in range(3)] for name in ("demo", "session")}
    runs = {
        "demo": _Run(["demo", "--no-models", "--suffix", "demo-a", "--bus",
                      f"tcp://127.0.0.1:{ports['demo'][0]}", "--protocol-bus",
                      f"tcp://127.0.0.1:{ports['demo'][1]}", "--display-port",
                      str(ports["demo"][2])], tmp_path),
        "session": _Run(["session", "--config", "demo", "--set", "prepare.demo.models=false",
                         "--set", 'params.suffix="demo-b"', "--set",
                         f'params.bus="tcp://127.0.0.1:{ports["session"][0]}"', "--set",
                         f'params.protocol_bus="tcp://127.0.0.1:{ports["session"][1]}"',
                         "--set", f"params.display_port={ports['session'][2]}"], tmp_path),
    }  # fmt: skip
    suffixes = {"demo": "demo-a", "session": "demo-b"}
    try:
        argvs, nodes = {}, []
        for name, run in runs.items():
            work = run.wait_for(r"logs in (\S+)$", 120)
            run.wait_for(r"^protocol: started", 300)
            replace = {suffixes[name]: "SUFFIX"}
            replace |= {str(p): f"PORT{i}" for i, p in enumerate(ports[name])}
            argvs[name] = _argvs(run, work, replace)
            nodes += run.nodes()
        for run in runs.values():
            run.process.send_signal(signal.SIGTERM)
        codes = [run.process.wait(90) for run in runs.values()]
    finally:
        for run in runs.values():
            if run.process.poll() is None:
                run.process.kill()
    assert len(argvs["demo"]) == 5, argvs["demo"]  # display, emg, camera, pipeline, protocol
    assert argvs["demo"] == argvs["session"]
    assert codes == [0, 0], [run.lines[-5:] for run in runs.values()]
    _, alive = psutil.wait_procs(nodes, timeout=30)
    assert not alive, f"left running after SIGTERM: {[p.pid for p in alive]}"
