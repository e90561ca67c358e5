"""The EMG node over real LSL (loopback): simulator stream, truth stream, bridge, CLI signals."""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from nodes.emg import load_node_config, run_node
from streaming.acquisition.channel_map import ChannelMap, unit_scale
from streaming.acquisition.clock import COUNTER_MODULUS
from streaming.acquisition.lsl_io import (
    ChunkInlet,
    StreamSelector,
    channel_labels,
    desc_to_dict,
    find_stream,
)
from streaming.config import ConfigError
from streaming.errors import StreamFormatError

FS = 4096.0


def _collect(inlet: ChunkInlet, seconds: float) -> tuple[np.ndarray, np.ndarray]:
    data, stamps = [], []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        chunk, ts = inlet.pull(timeout_s=0.2)
        if len(ts):
            data.append(chunk)
            stamps.append(ts)
    assert data, f"no samples from {inlet.name!r} in {seconds} s"
    return np.concatenate(data), np.concatenate(stamps)


def test_channel_map_derives_bipolar_differences_and_pass_through() -> None:
    cmap = ChannelMap({"F1": ("E3", "E4"), "F2": "E1"}, ["E1", "E2", "E3", "E4"], scale=2.0)
    data = np.array([[1.0, 2.0, 10.0, 4.0], [0.5, 0.0, -1.0, 1.0]])
    np.testing.assert_allclose(cmap.apply(data), [[12.0, 2.0], [-4.0, 1.0]])
    assert cmap.labels == ["F1", "F2"] and cmap.inputs == ["E1", "E3", "E4"]
    passthrough = ChannelMap({}, ["A", "B", "Counter"], exclude=("Counter",))
    assert passthrough.labels == ["A", "B"]
    with pytest.raises(StreamFormatError, match=r"F1 needs 'E9'.*its labels are"):
        ChannelMap({"F1": ("E9", "E4")}, ["E1", "E4"])
    with pytest.raises(StreamFormatError, match="duplicate channel labels"):
        ChannelMap({}, ["E1", "E1"])


def test_node_config_rejects_bad_values_naming_the_key() -> None:
    with pytest.raises(ConfigError, match=r"stream\.chunk_samples"):
        load_node_config(None, ["stream.chunk_samples=0"])
    with pytest.raises(ConfigError, match="source"):
        load_node_config(None, ['source="usb"'])


def test_simulator_node_streams_4096_hz_with_counter_offset_and_truth(spawn, unique_name) -> None:
    offset = 0.25
    spawn(
        "node",
        [
            f'stream.name="{unique_name}"',
            f'stream.source_id="{unique_name}"',
            f'stream.truth_name="{unique_name}-truth"',
            f"timing.clock_offset_s={offset}",
            "timing.start_delay_s=0.2",
        ],
    )
    info = find_stream(StreamSelector(name=unique_name), timeout_s=30)
    truth_info = find_stream(StreamSelector(name=f"{unique_name}-truth"), timeout_s=10)
    assert info.type() == "EMG" and info.nominal_srate() == FS and info.channel_count() == 23
    assert channel_labels(info) == [f"F{i}" for i in range(1, 23)] + ["counter"]
    desc = desc_to_dict(info)
    units = [c["unit"] for c in desc["channels"]["channel"]]
    assert units == ["microvolts"] * 22 + ["samples"]
    types = [c["type"] for c in desc["channels"]["channel"]]
    assert types == ["EMG"] * 22 + ["misc"]  # MNE's non-data type: never filtered or plotted
    sim = desc["simulation"]
    t0 = float(sim["t0_lsl"])
    assert float(sim["clock_offset_s"]) == offset and float(sim["jitter_s"]) == 0.0
    assert desc["counter"]["modulo"] == str(COUNTER_MODULUS)
    assert truth_info.type() == "EMGTruth" and truth_info.nominal_srate() == FS / 32
    truth_labels = channel_labels(truth_info)
    assert truth_labels[0] == "sample_index" and "zygomaticus_major_l" in truth_labels

    truth_inlet = ChunkInlet(truth_info, clock_sync=False)
    inlet = ChunkInlet(info, clock_sync=False)
    try:
        truth_inlet.open(10)
        inlet.open(10)
        data, stamps = _collect(inlet, 1.2)
        truth, truth_stamps = _collect(truth_inlet, 0.3)
    finally:
        inlet.close()
        truth_inlet.close()

    assert data.dtype == np.float32 and data.shape[1] == 23
    counter = data[:, -1].astype(np.int64)
    assert np.all(np.diff(counter) == 1), "counter has gaps or repeats"
    # stamps = true time + offset; true time of sample k = t0 + k / rate
    np.testing.assert_allclose(stamps - offset, t0 + counter / FS, atol=1e-6, rtol=0)
    assert abs(np.median(np.diff(stamps)) * FS - 1.0) < 1e-6
    assert len(stamps) > 0.5 * 1.2 * FS  # real time: about 1.2 s arrived in 1.2 s
    assert np.all(np.isfinite(data)) and 1.0 < np.abs(data[:, :22]).std() < 500.0

    index = truth[:, 0].astype(np.int64)
    assert np.all(index % 32 == 0) and np.all(np.diff(index) == 32)
    np.testing.assert_allclose(truth_stamps, t0 + index / FS, atol=1e-6, rtol=0)
    activations = truth[:, 1 : truth_labels.index("fault_F1")]
    assert np.all((activations >= 0) & (activations <= 1))
    assert not truth[:, truth_labels.index("fault_F1") :].any()  # no faults configured
    # the EMG sample whose counter equals a truth row's index was stamped at that time + offset
    common, emg_at, truth_at = np.intersect1d(counter, index, return_indices=True)
    assert len(common) > 5
    np.testing.assert_allclose(stamps[emg_at] - offset, truth_stamps[truth_at], atol=1e-6)


def test_simulator_node_announces_each_electrode_fault_in_its_truth_stream(
    spawn, unique_name
) -> None:
    """Faults from the node's config (``[[simulator.faults]]``): the truth stream's ``desc`` lists
    each one's exact sample window and the code table, and each row's ``fault_<channel>`` holds
    the codes of the faults active in that chunk, as the simulator's pure ``fault_codes`` says."""
    from simulation import FAULT_CODES, EmgSimulator
    from simulation.live import chunk_fault_codes

    faults = ('[{channel="F5", kind="bridge", partner="F7", start_s=0.3, duration_s=0.4}, '
              '{channel="F11", kind="lifting", start_s=0.5, ramp_s=2.0}]')  # fmt: skip
    spawn("node", [f'stream.name="{unique_name}"', f'stream.source_id="{unique_name}"',
                   f'stream.truth_name="{unique_name}-truth"', "timing.start_delay_s=1.5",
                   f"simulator.faults={faults}"])  # fmt: skip
    truth_info = find_stream(StreamSelector(name=f"{unique_name}-truth"), timeout_s=30)
    desc = desc_to_dict(truth_info)
    assert {k: int(v) for k, v in desc["fault_codes"].items()} == FAULT_CODES
    assert desc["faults"]["fault"] == [
        {"kind": "bridge", "channels": "F5,F7", "start_sample": str(round(0.3 * FS)),
         "stop_sample": str(round(0.3 * FS) + round(0.4 * FS))},
        {"kind": "lifting", "channels": "F11", "start_sample": str(round(0.5 * FS)),
         "stop_sample": ""},
    ]  # fmt: skip
    labels = channel_labels(truth_info)
    inlet = ChunkInlet(truth_info, clock_sync=False)
    try:
        inlet.open(10)
        truth, _ = _collect(inlet, 2.0)
    finally:
        inlet.close()

    node = load_node_config(None, [f"simulator.faults={faults}"])
    sim, chunk = EmgSimulator(node.simulator), node.stream.chunk_samples
    first = labels.index("fault_F1")
    index = truth[:, 0].astype(np.int64)
    expected = chunk_fault_codes(sim, 0, int(index.max()) // chunk + 1, chunk)[index // chunk]
    np.testing.assert_array_equal(truth[:, first:], expected)
    f5, f11 = first + sim.labels.index("F5"), first + sim.labels.index("F11")
    assert {0, FAULT_CODES["bridge"]} <= set(truth[:, f5])  # rows from before/inside/after it
    assert np.all(truth[index >= round(0.5 * FS), f11] == FAULT_CODES["lifting"])


@pytest.mark.slow
def test_kuramoto_node_jitters_chunk_stamps_within_the_configured_bound(spawn, unique_name) -> None:
    jitter = 0.002
    spawn(
        "node",
        [
            f'stream.name="{unique_name}"',
            f'stream.source_id="{unique_name}"',
            "stream.truth=false",
            'simulator.scheme="kuramoto"',
            f"timing.jitter_s={jitter}",
            "timing.start_delay_s=0.2",
        ],
    )
    info = find_stream(StreamSelector(name=unique_name), timeout_s=30)
    assert info.channel_count() == 22 and channel_labels(info)[-2:] == ["K23", "counter"]
    desc = desc_to_dict(info)
    t0 = float(desc["simulation"]["t0_lsl"])
    assert desc["simulation"]["jitter"] == "uniform" and desc["montage"] == "monopolar"
    with ChunkInlet(info, clock_sync=False) as inlet:
        inlet.open(10)
        data, stamps = _collect(inlet, 1.0)
    counter = data[:, -1].astype(np.int64)
    assert np.all(np.diff(counter) == 1)
    deviation = stamps - (t0 + counter / FS)
    assert np.all(np.abs(deviation) <= jitter + 1e-6)
    per_chunk = deviation[counter % 32 == 31]  # liblsl derives the other stamps of a chunk
    assert np.std(per_chunk) > jitter / 4  # uniform +/-2 ms: sd 1.15 ms
    assert np.ptp(per_chunk) > jitter


def test_bridge_republishes_a_bipolar_channel_map_with_the_same_stamps(spawn, unique_name) -> None:
    raw = f"{unique_name}-raw"
    labels = ["E1", "E2", "E3", "E4"]
    spawn("raw", {"name": raw, "labels": labels, "rate_hz": 1000.0, "unit": "mV"})
    spawn(
        "node",
        [
            'source="lsl"',
            f'bridge.name="{raw}"',
            'bridge.type="EEG"',
            "bridge.expect_rate_hz=1000.0",
            "bridge.expect_channels=5",
            'bridge.counter_label="Counter"',
            'bridge.channels.F1=["E3", "E4"]',
            'bridge.channels.F2="E1"',
            f'stream.name="{unique_name}"',
            f'stream.source_id="{unique_name}"',
        ],
    )
    info = find_stream(StreamSelector(name=unique_name), timeout_s=30)
    assert channel_labels(info) == ["F1", "F2", "counter"] and info.nominal_srate() == 1000.0
    bridge = desc_to_dict(info)["bridge"]
    assert bridge["source_name"] == raw and bridge["derivation"][0]["minus"] == "E4"
    raw_info = find_stream(StreamSelector(name=raw), timeout_s=10)
    with ChunkInlet(info) as inlet, ChunkInlet(raw_info) as raw_inlet:
        inlet.open(10)
        raw_inlet.open(10)
        data, stamps = _collect(inlet, 1.0)
        raw_data, raw_stamps = _collect(raw_inlet, 0.2)
    k = data[:, 2].astype(np.int64)
    assert np.all(np.diff(k) == 1)
    e3 = 100.0 * np.sin(0.01 * k * 3)
    e4 = 100.0 * np.sin(0.01 * k * 4)
    e1 = 100.0 * np.sin(0.01 * k * 1)
    # the raw stream declares millivolts: scale "auto" converts to microvolts (x1000)
    np.testing.assert_allclose(data[:, 0], 1e3 * (e3 - e4), rtol=1e-6, atol=0.05)
    np.testing.assert_allclose(data[:, 1], 1e3 * e1, rtol=1e-6, atol=0.05)
    assert float(bridge["scale"]) == 1e3 and desc_to_dict(info)["manufacturer"] == "TestAmp"
    common, a, b = np.intersect1d(k, raw_data[:, 4].astype(np.int64), return_indices=True)
    assert len(common) > 10
    np.testing.assert_allclose(stamps[a], raw_stamps[b], atol=1e-3)


def test_bridge_of_the_simulator_names_its_truth_only_with_the_simulators_counter(
    spawn, unique_name
) -> None:
    """The simulator standing for an amplifier's app, bridged: with the source's counter
    (``bridge.counter_label``) the sample indices are the simulator's, so the bridged stream
    names the simulator's truth stream (``eifer check`` finds it); with the bridge's own count
    it names none (that truth would not fit its indices)."""
    amp = f"{unique_name}-amp"
    spawn("node", [f'stream.name="{amp}"', f'stream.source_id="{amp}"'])
    base = ['source="lsl"', f'bridge.name="{amp}"', 'bridge.type="EMG"', "bridge.timeout_s=30.0"]
    for name, extra in ((f"{unique_name}-k", ['bridge.counter_label="counter"']),
                        (f"{unique_name}-n", ['bridge.channels.F1="F1"'])):  # fmt: skip
        spawn("node", [*base, *extra, f'stream.name="{name}"', f'stream.source_id="{name}"'])
    counted = desc_to_dict(find_stream(StreamSelector(name=f"{unique_name}-k"), timeout_s=30))
    assert counted["simulation"]["truth_stream"] == f"{amp}-truth"
    assert counted["bridge"]["counter_from"] == "counter"
    own = desc_to_dict(find_stream(StreamSelector(name=f"{unique_name}-n"), timeout_s=30))
    assert "simulation" not in own and own["bridge"]["counter_from"] == "bridge sample count"


def test_bridge_refuses_a_missing_label_or_a_wrong_rate(spawn, unique_name) -> None:
    raw = f"{unique_name}-raw"
    spawn("raw", {"name": raw, "labels": ["E1", "E2"], "rate_hz": 500.0})
    base = [f'bridge.name="{raw}"', 'source="lsl"', "bridge.timeout_s=20"]
    cfg = load_node_config(None, [*base, 'bridge.channels.F1=["E1", "E7"]'])
    with pytest.raises(StreamFormatError, match=r"F1 needs 'E7'.*'E1', 'E2', 'Counter'"):
        run_node(cfg, duration_s=0.1)
    cfg = load_node_config(None, [*base, "bridge.expect_rate_hz=4096.0"])
    with pytest.raises(StreamFormatError, match=r"runs at 500 Hz.*expects 4096 Hz"):
        run_node(cfg, duration_s=0.1)
    cfg = load_node_config(None, [*base, "bridge.expect_channels=22"])
    with pytest.raises(StreamFormatError, match=r"has 3 channels.*expects 22"):
        run_node(cfg, duration_s=0.1)
    cfg = load_node_config(None, [*base, 'bridge.scheme="fridlund"', 'bridge.channels.F1="E1"'])
    with pytest.raises(StreamFormatError, match=r"scheme 'fridlund'.*missing \['F2', 'F3'"):
        run_node(cfg, duration_s=0.1)


def test_unit_scale_converts_declared_units_to_microvolts() -> None:
    assert unit_scale(["V", "volts"]) == 1e6
    assert unit_scale(["mV"]) == 1e3
    assert unit_scale(["microvolts", "uV"]) == 1.0
    assert unit_scale([]) == 1.0  # nothing declared: assumed microvolts, with a warning
    with pytest.raises(StreamFormatError, match=r"set bridge\.scale"):
        unit_scale(["V", "mV"])
    with pytest.raises(StreamFormatError, match="furlongs"):
        unit_scale(["furlongs"])


MNE_LSL_MARGIN_S = 120.0  # of the suite's 300 s per test; loopback answers in milliseconds


def test_mne_lsl_sees_the_counter_as_non_data_and_truth_follows_the_name(
    unique_name, tmp_path
) -> None:
    """MNE-LSL's StreamLSL on the real node: 22 EMG channels, the counter outside the data
    channels; the truth stream is named after ``--name`` with its own source id.

    MNE-LSL resolves with its own bundled liblsl (not pylsl's), and ``StreamLSL.connect(t)``
    splits ``t`` over the identifiers given (name and type: t/2 each, one resolve after the
    other, the second filtered by the first), then spends up to ``t`` again on opening the
    inlet and on the clock offset. So it gets the unique name alone, and a margin that no
    loaded machine uses up: what must hold is that it finds the node's stream at all and
    reads its channel types, not how fast a starved process answers."""
    import mne
    from mne_lsl.lsl import resolve_streams
    from mne_lsl.stream import StreamLSL

    log = tmp_path / "emg-node.log"  # a file: a pipe nobody reads could stall the node
    with log.open("w") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "nodes.cli", "node", "emg", "--name", unique_name,
             "--set", "timing.start_delay_s=0.2"],
            stdout=out, stderr=out,
        )  # fmt: skip
    stream = StreamLSL(bufsize=1.0, name=unique_name)
    try:
        info = find_stream(StreamSelector(name=unique_name), timeout_s=60)
        truth = find_stream(StreamSelector(name=f"{unique_name}-truth"), timeout_s=30)
        assert unique_name in info.source_id()
        assert truth.source_id() == f"{info.source_id()}-truth"
        started = time.monotonic()
        found: list = []
        while not found and time.monotonic() - started < MNE_LSL_MARGIN_S:
            assert process.poll() is None, f"the EMG node ended: {log.read_text()[-2000:]}"
            found = resolve_streams(5.0, name=unique_name)
        assert [(s.name, s.stype) for s in found] == [(unique_name, "EMG")], (
            f"MNE-LSL's liblsl found {len(found)} streams named {unique_name} in "
            f"{time.monotonic() - started:.0f} s; pylsl's had found it"
        )
        stream.connect(timeout=MNE_LSL_MARGIN_S)
        types = stream.get_channel_types()
        assert stream.ch_names[-1] == "counter" and types[-1] == "misc"
        assert types[:-1] == ["emg"] * 22
        data_channels = mne.pick_types(stream.info, emg=True, misc=False)
        assert len(data_channels) == 22 and stream.ch_names.index("counter") not in data_channels
    finally:
        if stream.connected:
            stream.disconnect()
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        finally:
            if process.poll() is None:
                process.kill()


def test_a_bad_set_value_is_named_in_the_cli_error() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "nodes.cli", "node", "emg", "--set", "stream.chunk_samples=0"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 1
    assert "--set stream.chunk_samples=0" in result.stderr and "Traceback" not in result.stderr
    assert "emg.toml" not in result.stderr  # the shipped file is not at fault


def test_cli_node_without_counter_stops_cleanly_on_sigterm(unique_name) -> None:
    env = dict(os.environ)
    process = subprocess.Popen(
        [sys.executable, "-m", "nodes.cli", "node", "emg", "--name", unique_name,
         "--set", f'stream.source_id="{unique_name}"', "--set", "stream.truth=false",
         "--set", "stream.counter=false"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    try:
        info = find_stream(StreamSelector(name=unique_name), timeout_s=30)
        assert channel_labels(info) == [f"F{i}" for i in range(1, 23)]
        assert "counter" not in desc_to_dict(info)
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=20)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, err
    assert "stopped after" in err


@pytest.mark.slow
def test_simulated_participant_follows_the_protocol_markers(spawn, unique_name) -> None:
    markers = f"{unique_name}-markers"
    times = mp.get_context("spawn").Queue()
    schedule = [(0.0, "show:Smile-Open:1"), (0.5, "start:Smile-Open:1"), (1.5, "stop:Smile-Open:1")]
    spawn("markers", {"name": markers, "schedule": schedule, "lead_s": 2.5}, times)
    spawn(
        "node",
        [
            f'stream.name="{unique_name}"',
            f'stream.source_id="{unique_name}"',
            f'stream.truth_name="{unique_name}-truth"',
            'simulator.script.kind="markers"',
            f'simulator.script.markers_stream="{markers}"',
            "simulator.script.ramp_s=0.2",
            "timing.start_delay_s=0.2",
        ],
    )
    truth_info = find_stream(StreamSelector(name=f"{unique_name}-truth"), timeout_s=30)
    zyg = channel_labels(truth_info).index("zygomaticus_major_l")
    with ChunkInlet(truth_info, clock_sync=False) as inlet:
        inlet.open(10)
        planned = dict(times.get(timeout=30) for _ in schedule)
        truth, stamps = _collect(inlet, max(0.5, planned["stop:Smile-Open:1"] + 1.0 - _now()))
    start, stop = planned["start:Smile-Open:1"], planned["stop:Smile-Open:1"]
    assert stamps[0] < start - 0.3, "truth stream opened too late to see the onset"
    act = truth[:, zyg]
    # the generator runs up to one 125 ms block ahead: onsets may land that much late
    assert np.all(act[stamps < start] == 0.0)
    held = (stamps > start + 0.2 + 0.15) & (stamps < stop)
    assert held.sum() > 50 and np.all((act[held] > 0.8) & (act[held] < 1.0))
    assert np.all(act[stamps > stop + 0.2 + 0.15] == 0.0)


def _now() -> float:
    import pylsl

    return pylsl.local_clock()
