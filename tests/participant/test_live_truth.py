"""``eifer node camera --source participant`` beside ``eifer node emg`` over real LSL: the camera's
``VideoTruth`` stream carries the EMG simulator's activations at the same LSL times, and its
``phi`` follows them one electromechanical delay later (within one frame)."""

from __future__ import annotations

import subprocess
import sys
import time

import numpy as np
import pylsl
import pytest

from simulation import EmgSimulator, SimulatorConfig
from simulation.participant import Participant
from streaming.acquisition.lsl_io import ChunkInlet, StreamSelector, desc_to_dict, find_stream

SEED = 5
EVENTS = '[["Smile-Open", 6.0, 1.6], ["Forehead-Raise", 8.0, 1.2]]'
LOOP_S = 10.2  # last event end + 1 s
SIMULATOR = [f"seed={SEED}", 'script.kind="custom"', f"script.events={EVENTS}"]


def _node(*argv: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "nodes.cli", *argv],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def _sets(prefix: str, items: list[str]) -> list[str]:
    return [arg for item in items for arg in ("--set", prefix + item)]


def _pull_until(inlet: ChunkInlet, rows: list, stamps: list, t_end: float, deadline: float):
    while time.monotonic() < deadline:
        data, ts = inlet.pull(0.2)
        rows += list(data)
        stamps += list(ts)
        if stamps and stamps[-1] >= t_end:
            return


@pytest.mark.slow
def test_camera_truth_matches_the_emg_truth_in_time(unique_name) -> None:
    emg, cam = f"{unique_name}-emg", f"{unique_name}-cam"
    camera = _node(
        "node", "camera", "--source", "participant", "--name", cam, "--size", "320x180",
        "--set", f'participant.emg_stream="{emg}"', *_sets("participant.simulator.", SIMULATOR),
    )  # fmt: skip
    emg_node = _node(
        "node", "emg", "--name", emg, "--set", f'stream.truth_name="{emg}-truth"',
        *_sets("simulator.", SIMULATOR),
    )  # fmt: skip
    try:
        emg_info = find_stream(StreamSelector(name=f"{emg}-truth"), timeout_s=30)
        cam_info = find_stream(StreamSelector(name=f"{cam}-truth", type="VideoTruth"), 60)
        t0 = float(desc_to_dict(find_stream(StreamSelector(name=emg), 10))["simulation"]["t0_lsl"])
        cam_desc = desc_to_dict(cam_info)
        assert cam_desc["of_stream"] == cam and float(cam_desc["t0_lsl"]) == t0
        delay_s = float(cam_desc["electromechanical_delay_ms"]) / 1e3
        labels = [c["label"] for c in cam_desc["channels"]["channel"]]
        emg_rows, emg_t, cam_rows, cam_t = [], [], [], []
        with (
            ChunkInlet(emg_info, max_buflen_s=60) as e_in,
            ChunkInlet(cam_info, max_buflen_s=60) as c_in,
        ):
            e_in.open(10)
            c_in.open(10)
            deadline = time.monotonic() + 60
            # the script loops every 10.2 s: one whole loop after both inlets are open
            t_end = pylsl.local_clock() + LOOP_S + 0.5
            _pull_until(c_in, cam_rows, cam_t, t_end, deadline)
            _pull_until(e_in, emg_rows, emg_t, t_end, deadline)
    finally:
        for node in (camera, emg_node):
            node.terminate()
        for node in (camera, emg_node):
            _, err = node.communicate(timeout=20)
            assert b"Traceback" not in err, err.decode()[-2000:]
    emg_rows, emg_t = np.asarray(emg_rows, float), np.asarray(emg_t)
    cam_rows, cam_t = np.asarray(cam_rows, float), np.asarray(cam_t)
    assert cam_t[-1] >= t_end and emg_t[-1] >= t_end, "streams ended early"
    act = [i for i, x in enumerate(labels) if x.startswith("act_")]
    phi = [i for i, x in enumerate(labels) if x.startswith("phi_")]
    # EMGTruth: sample_index, the activations, then one fault_<channel> column per channel
    faults = emg_rows.shape[1] - 1 - len(act)
    assert faults == 22 and len(phi) == 55
    assert (emg_rows[:, 1 + len(act) :] == 0).all()  # no electrode fault configured
    # the EMG truth is stamped at t0 + sample_index / rate: check, then use it as the time base
    np.testing.assert_allclose(emg_t, t0 + emg_rows[:, 0] / 4096.0, atol=1e-6)
    frames = cam_t > emg_t[0] + delay_s + 0.05
    assert frames.sum() > 0.3 * 30 * LOOP_S  # a busy CPU drops frames, as a camera does

    def emg_truth_at(t: np.ndarray) -> np.ndarray:
        return np.stack([np.interp(t, emg_t, emg_rows[:, 1 + j]) for j in range(len(act))], 1)

    # same activations at the same LSL time, wherever the EMG truth (a row per 7.8 ms chunk) has
    # rows close on both sides of the frame: a truth row missing in the pull must not be
    # interpolated across a whole ramp
    after = np.searchsorted(emg_t, cam_t)
    inside = (after > 0) & (after < len(emg_t))
    spacing = np.full(len(cam_t), np.inf)
    spacing[inside] = emg_t[after[inside]] - emg_t[after[inside] - 1]
    comparable = frames & (spacing < 2.5 * 32 / 4096.0)
    assert comparable.sum() > 0.9 * frames.sum()
    got = cam_rows[comparable][:, act]
    assert got.max() > 0.5, "no movement seen in the window"
    np.testing.assert_allclose(got, emg_truth_at(cam_t[comparable]), atol=0.02)
    # phi = map(gain * a(t - EMD)): the lag that explains phi best is the EMD, within one frame
    participant = Participant(SEED, EmgSimulator(SimulatorConfig(seed=SEED)))
    lags = np.arange(-0.1, 0.2, 0.005)
    errors = [
        np.abs(
            participant.map(emg_truth_at(cam_t[frames] - lag) * participant.traits.face_gain)
            - cam_rows[frames][:, phi]
        ).mean()
        for lag in lags
    ]
    best = lags[int(np.argmin(errors))]
    assert abs(best - delay_s) <= 1 / 30 + 1e-9, (
        f"phi follows the EMG truth {best * 1e3:.0f} ms late"
    )
    assert min(errors) < 0.01
    # frame indices count up (gaps = dropped frames); stamps sit on the camera's 30 fps grid
    assert np.all(np.diff(cam_rows[:, 0]) >= 1)
    slots = (cam_t - cam_t[0]) * 30
    np.testing.assert_allclose(slots, np.round(slots), atol=0.01)
    np.testing.assert_allclose(np.diff(slots), np.diff(cam_rows[:, 0]), atol=0.01)
