"""``eifer check`` against real nodes: the EMG simulator (with its truth stream), the synthetic
camera and the pipeline, each its own process, judged from outside through the bus and LSL."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _eifer(*argv: str) -> list[str]:
    return [sys.executable, "-m", "nodes.cli", *argv]


def _start(*argv: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        _eifer(*argv), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=REPO
    )


def _check(bus: str, emg: str, cam: str, seconds: float, *more: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        _eifer("check", "--seconds", str(seconds), "--bus", bus, "--json",
               "--set", f'emg.name="{emg}"', "--set", f'video.name="{cam}"',
               "--set", "find_timeout_s=20", *more),
        capture_output=True, text=True, cwd=REPO, timeout=120,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )  # fmt: skip


@contextlib.contextmanager
def _live(unique_name: str, *emg_args: str) -> Iterator[tuple[str, str, str]]:
    """EMG simulator node (``emg_args`` added), synthetic camera and pipeline, each a process."""
    emg, cam = f"{unique_name}-emg", f"{unique_name}-cam"
    bus = f"tcp://127.0.0.1:{_free_port()}"
    nodes = [
        _start("node", "emg", "--name", emg, "--set", "timing.jitter_s=0.002", *emg_args),
        _start("node", "camera", "--source", "synthetic", "--name", cam, "--size", "160x120"),
        _start("pipeline", "--set", f'emg.name="{emg}"', "--set", f'video.name="{cam}"',
               "--set", f'output.bus_address="{bus}"',
               "--set", f'output.lsl_name="{unique_name}-EIFER"'),
    ]  # fmt: skip
    try:
        yield bus, emg, cam
    finally:
        for node in nodes:
            node.terminate()
        for node in nodes:
            node.wait(15)


@pytest.fixture
def live_system(unique_name: str) -> Iterator[tuple[str, str, str]]:
    with _live(unique_name) as system:
        yield system


def _failed(result: subprocess.CompletedProcess) -> str:
    """The failing rows (or the error) of a check run, for an assertion message."""
    try:
        report = json.loads(result.stdout)
    except ValueError:
        return result.stdout + result.stderr[-2000:]
    return json.dumps([r for r in report["rows"] if r["passed"] is False] + report["notes"])


def _rows(report: dict) -> dict[str, dict]:
    return {row["check"]: row for row in report["rows"]}


def test_check_judges_a_live_simulated_setup_against_its_truth(live_system):
    bus, emg, cam = live_system
    result = _check(bus, emg, cam, 8, "--set", "settle_s=3")
    assert result.returncode == 0, _failed(result)
    report = json.loads(result.stdout)
    rows = _rows(report)
    assert report["passed"] and report["emg_truth"]
    assert rows["frames captured"]["value"] >= 8 * 30 * 0.9
    assert rows["published / captured"]["passed"] is True
    alignment = rows["EMG-to-frame alignment error |p99| (vs truth)"]
    assert alignment["passed"] is True and alignment["value"] < 1.0, alignment
    assert rows["duplicated frames published"]["value"] == 0
    assert any(name.startswith("latency capture_to_publish") for name in rows)
    electrodes = rows["electrodes: 22 good, 0 check, 0 bad"]  # the simulator's clean electrodes
    assert electrodes["passed"] is True and electrodes["threshold"] == "<= 0", electrodes

    # the same system against a threshold it cannot meet: a failing row, exit status 1
    strict = _check(bus, emg, cam, 2, "--set", "thresholds.max_capture_to_publish_p99_ms=0.001")
    assert strict.returncode == 1, strict.stdout + strict.stderr
    failed = [row["check"] for row in json.loads(strict.stdout)["rows"] if row["passed"] is False]
    assert failed == ["capture -> received here p99"]


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_check_fails_on_a_flat_electrode_and_names_it(unique_name):
    fault = 'simulator.faults=[{channel="F3", kind="flat"}]'
    with _live(unique_name, "--set", fault) as (bus, emg, cam):
        result = _check(bus, emg, cam, 4, "--set", "settle_s=3")
        lenient = _check(bus, emg, cam, 2, "--set", "thresholds.max_bad_electrodes=1")
    assert result.returncode == 1, result.stdout + result.stderr
    report = json.loads(result.stdout)
    failed = [row for row in report["rows"] if row["passed"] is False]
    assert [row["check"] for row in failed] == ["electrodes: 21 good, 0 check, 1 bad"], failed
    assert failed[0]["value"] == 1 and failed[0]["note"].startswith("F3: flat"), failed[0]
    assert lenient.returncode == 0, _failed(lenient)


def test_check_without_a_pipeline_fails_with_nothing_published(unique_name):
    cam = f"{unique_name}-cam"
    camera = _start("node", "camera", "--source", "synthetic", "--name", cam, "--size", "64x48")
    try:
        bus = f"tcp://127.0.0.1:{_free_port()}"
        result = subprocess.run(
            _eifer("check", "--seconds", "2", "--bus", bus, "--set", f'video.name="{cam}"',
                   "--set", 'emg.name="absent-emg"', "--set", "find_timeout_s=10"),
            capture_output=True, text=True, cwd=REPO, timeout=120,
        )  # fmt: skip
    finally:
        camera.terminate()
        camera.wait(15)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "published / captured" in result.stdout and "FAIL" in result.stdout
    assert "EMG stream" in result.stdout  # the note says which stream was not found


@pytest.mark.slow
def test_check_on_a_replayed_session_reproduces_the_live_figures(unique_name, tmp_path):
    """Live: simulator + camera + pipeline, checked while ``eifer record`` keeps the sources
    (EMG, its truth, camera). Then the nodes stop, ``eifer replay`` plays the session to a new
    pipeline, and ``eifer check`` gives the same verdicts and figures within tolerance."""
    emg, cam = f"{unique_name}-emg", f"{unique_name}-cam"
    bus = f"tcp://127.0.0.1:{_free_port()}"
    pipeline_args = ("pipeline", "--set", f'emg.name="{emg}"', "--set", f'video.name="{cam}"',
                     "--set", f'output.bus_address="{bus}"',
                     "--set", f'output.lsl_name="{unique_name}-EIFER"')  # fmt: skip
    sources = [
        _start("node", "emg", "--name", emg, "--set", "timing.jitter_s=0.002"),
        _start("node", "camera", "--source", "synthetic", "--name", cam, "--size", "160x120"),
    ]
    pipeline = _start(*pipeline_args)
    try:
        recorder = subprocess.Popen(
            _eifer("record", "--root", str(tmp_path), "--session", "s", "--duration", "24",
                   "--quiet", "--stream", emg, "--stream", f"{emg}-truth", "--stream", cam),
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, cwd=REPO,
        )  # fmt: skip
        live = _check(bus, emg, cam, 6, "--set", "settle_s=4")
        assert recorder.wait(60) == 0, recorder.stderr.read() if recorder.stderr else ""
    finally:
        for node in [*sources, pipeline]:
            node.terminate()
        for node in [*sources, pipeline]:
            node.wait(15)
    assert live.returncode == 0, _failed(live)
    replay = _start("replay", str(tmp_path / "s"), "--quiet")
    pipeline = _start(*pipeline_args)
    try:
        replayed = _check(bus, emg, cam, 6, "--set", "settle_s=4")
    finally:
        for node in (replay, pipeline):
            node.terminate()
        for node in (replay, pipeline):
            node.wait(15)
    assert replayed.returncode == 0, _failed(replayed)
    a, b = _rows(json.loads(live.stdout)), _rows(json.loads(replayed.stdout))
    assert json.loads(replayed.stdout)["emg_truth"], "the replay carries the truth stream"
    for name in ("published / captured", "frames with EMG missing"):
        assert abs(a[name]["value"] - b[name]["value"]) <= 0.05, (name, a[name], b[name])
    alignment = "EMG-to-frame alignment error |p99| (vs truth)"
    assert a[alignment]["value"] < 1.0 and b[alignment]["value"] < 1.0, (a[alignment], b[alignment])
    assert abs(a["frames captured"]["value"] - b["frames captured"]["value"]) <= 0.1 * 180


def test_correlation_is_averaged_over_the_columns_that_move():
    from streaming.check.report import mean_correlation

    t = np.linspace(0, 1, 50)
    true = np.stack([np.sin(6 * t), np.full_like(t, 0.3), t], axis=1)  # a constant column
    predicted = np.stack([2 * np.sin(6 * t) + 1, t, -t], axis=1)
    assert mean_correlation(predicted, true) == pytest.approx((1.0 - 1.0) / 2)
    assert mean_correlation(predicted[:2], true[:2]) is None


def test_sample_times_come_from_the_nearest_truth_rows_when_a_replay_loops():
    from streaming.check.truth import sample_time

    rate_hz, chunk = 4096.0, 32
    k_loop = np.arange(0, 4096, chunk, dtype=float)  # one second of truth rows, played twice
    truth_k = np.concatenate([k_loop, k_loop])
    truth_t = np.concatenate([100 + k_loop / rate_hz, 101.1 + k_loop / rate_hz])
    k = np.array([1000.5, 1000.5])
    near = np.array([100 + 1000.5 / rate_hz, 101.1 + 1000.5 / rate_hz])
    np.testing.assert_allclose(sample_time(k, near, truth_t, truth_k), near, atol=1e-9)
    assert np.isnan(sample_time(k[:1], near[:1] + 5, truth_t, truth_k)[0])  # no truth near
