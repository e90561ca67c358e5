"""The lab as it is wired, on four hosts of the rig (issue 22):

- acquisition (its clock 5 s ahead of the others' and 50 ppm fast): ``eifer node emg``, the
  simulator standing for the amplifier, with its truth stream;
- workstation: ``eifer node camera --source participant`` (320x180, 15 fps), ``eifer pipeline``
  (EMG only: no models on two shared cores) publishing on the lab network, ``eifer display``
  with an access token;
- experiment: ``eifer node protocol`` (markers + instructions) and a LabRecorder remote-control
  script;
- recorder: ``eifer record --remote`` (serving only the experiment host), ``eifer check``.

Latency is not judged here (``max_capture_to_publish_p99_ms`` 3 s): the rig shares two cores
with other work, and a host starved of CPU for a second says nothing about the network.

LSL finds everything by multicast across the switch. The claims: ``eifer check`` on the
recorder host passes (EMG-to-frame alignment under 1 ms against the truth, >= 95 % published)
although the acquisition host's clock is seconds off and drifts; the recording carries the clock
offsets, and pyxdf's synchronisation pairs each frame with the EMG sample the pipeline used as
closely as live; the page works from another host with its token and is refused without it;
the remote control refuses a host not on its allow-list.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from streaming.check.truth import sample_time

from .conftest import NODE_ENV, REPO, chromium_available, eifer, probe
from .rig import Clock, Rig, faketime_missing, unavailable

pytestmark = pytest.mark.slow

ROLES = ["acquisition", "workstation", "experiment", "recorder"]
CLOCK = Clock(offset_s=5, drift_ppm=50)
TOKEN = "rig-tablet-token-0001"
CHECK_S, WINDOW_S = 15, 26
ALIGNMENT = "EMG-to-frame alignment error |p99| (vs truth)"


@dataclass
class Lab:
    rig: Rig
    root: Path
    check: dict
    check_output: str
    bus_rows: list[dict]
    remote_answers: list[str]
    stop_answers: list[str]
    page_with_token: int
    page_without_token: int
    stranger_answers: list[str]
    tablet: dict | str


def _json(result) -> object:
    assert result.returncode == 0, (result.stdout[-1000:], result.stderr[-3000:])
    return json.loads(result.stdout.strip().splitlines()[-1])


def _start_nodes(rig: Rig) -> None:
    ws, exp, rec = rig.address("workstation"), rig.address("experiment"), rig.address("recorder")
    bus, protocol_bus = f"tcp://{ws}:5556", f"tcp://{exp}:5557"
    start = rig.start
    start(
        "acquisition",
        eifer("node", "emg", "--name", "EMG", "--set", "timing.jitter_s=0.002"),
        log="emg.log",
        env=NODE_ENV,
        cwd=REPO,
    )
    start(
        "experiment",
        eifer(
            "node",
            "protocol",
            "--speed",
            "4",
            "--set",
            "lead_in_s=2",
            "--set",
            f'bus="{protocol_bus}"',
        ),
        log="protocol.log",
        env=NODE_ENV,
        cwd=REPO,
    )
    start(
        "workstation",
        eifer(
            "node",
            "camera",
            "--source",
            "participant",
            "--name",
            "Camera",
            "--size",
            "320x180",
            "--set",
            "rate_hz=15",
        ),
        log="camera.log",
        env=NODE_ENV,
        cwd=REPO,
    )
    start(
        "workstation",
        eifer(
            "pipeline",
            "--set",
            'emg.name="EMG"',
            "--set",
            'video.name="Camera"',
            "--set",
            f'output.bus_address="{bus}"',
            "--set",
            'output.lsl_name="EIFER"',
        ),
        log="pipeline.log",
        env=NODE_ENV,
        cwd=REPO,
    )
    start(
        "workstation",
        eifer(
            "display",
            "--set",
            f'host="{ws}"',
            "--set",
            "port=8080",
            "--set",
            f'token="{TOKEN}"',
            "--set",
            f'bus_address="{bus}"',
            "--set",
            f'protocol_address="{protocol_bus}"',
        ),
        log="display.log",
        env=NODE_ENV,
        cwd=REPO,
    )
    start("recorder", eifer("record", "--remote", "--remote-host", rec, "--remote-allow", exp,
                            "--root", str(rig.workdir / "root"), "--template", "bids",
                            "--require", "EMG", "--require", "Camera", "--quiet"),
          log="record.log", env=NODE_ENV, cwd=REPO)  # fmt: skip


def _run_lab(rig: Rig) -> Lab:
    ws, rec = rig.address("workstation"), rig.address("recorder")
    _start_nodes(rig)
    time.sleep(8)  # nodes start (imports on two shared cores), streams appear
    study = rig.workdir / "study"
    remote = probe("remote", rec, "22345", "select all",
                   f"filename {{root:{study}}} {{participant:P01}} {{task:rig}} {{run:1}}",
                   "start")  # fmt: skip
    answers = _json(rig.run("experiment", remote, timeout_s=60, env=NODE_ENV))
    dump = rig.workdir / "bus.jsonl"
    bus_dump = rig.start("recorder", probe("bus", f"tcp://{ws}:5556", str(WINDOW_S), str(dump)),
                         log="bus.log", env=NODE_ENV, cwd=REPO)  # fmt: skip
    check = rig.run("recorder", eifer("check", "--seconds", str(CHECK_S),
                                      "--bus", f"tcp://{ws}:5556", "--json",
                                      "--set", 'emg.name="EMG"', "--set", 'video.name="Camera"',
                                      "--set", "find_timeout_s=30", "--set", "settle_s=4",
                                      "--set", "thresholds.max_capture_to_publish_p99_ms=3000"),
                    timeout_s=180, env=NODE_ENV, cwd=REPO)  # fmt: skip
    bus_dump.wait(WINDOW_S + 60)
    stop = _json(rig.run("experiment", probe("remote", rec, "22345", "stop"), timeout_s=90,
                         env=NODE_ENV))  # fmt: skip
    page = f"http://{ws}:8080/"
    with_token = _json(rig.run("experiment", probe("http", f"{page}?token={TOKEN}"),
                               timeout_s=30, env=NODE_ENV))  # fmt: skip
    without = _json(rig.run("experiment", probe("http", page), timeout_s=30, env=NODE_ENV))
    stranger = _json(rig.run("workstation", probe("remote", rec, "22345", "status"),
                             timeout_s=30, env=NODE_ENV))  # fmt: skip
    tablet: dict | str = "no Chromium (playwright and /usr/bin/chromium)"
    if chromium_available():  # the tablet: the page opened from the experiment host
        result = rig.run("experiment", probe("page", f"{page}?token={TOKEN}"), timeout_s=120,
                         env=NODE_ENV)  # fmt: skip
        tablet = _json(result)  # type: ignore[assignment]
    (rig.workdir / "check.out").write_text(check.stdout + check.stderr)
    report = json.loads(check.stdout) if check.stdout.strip().startswith("{") else {}
    rows = [json.loads(line) for line in dump.read_text().splitlines() if line.strip()]
    return Lab(rig, study, report, check.stdout[-3000:] + check.stderr[-3000:], rows,
               answers, stop, with_token, without, stranger, tablet)  # fmt: skip


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    reason = unavailable() or faketime_missing()
    if reason:
        pytest.skip(reason)
    with Rig(ROLES, tmp_path_factory.mktemp("lab")) as rig:
        rig.configure_lsl()
        rig.set_clock("acquisition", CLOCK)
        yield _run_lab(rig)


def _failed_rows(lab: Lab) -> str:
    if not lab.check:
        return lab.check_output + "\n" + lab.rig.log("pipeline.log") + lab.rig.log("emg.log")
    return json.dumps([r for r in lab.check["rows"] if r["passed"] is False] + lab.check["notes"])


@pytest.mark.timeout(400)
def test_check_on_the_recorder_host_passes_with_the_acquisition_clock_seconds_off(lab) -> None:
    assert lab.check.get("passed") is True, _failed_rows(lab)
    assert lab.check["emg_truth"], "the truth stream was found across the hosts"
    rows = {row["check"]: row for row in lab.check["rows"]}
    assert rows[ALIGNMENT]["value"] < 1.0, rows[ALIGNMENT]
    assert rows["published / captured"]["value"] >= 0.95
    assert rows["frames captured"]["value"] >= CHECK_S * 15 * 0.8


def _by_name(streams: list[dict]) -> dict[str, dict]:
    return {s["info"]["name"][0]: s for s in streams}


def _recording(lab: Lab) -> Path:
    found = sorted(lab.root.rglob("*.xdf"))
    assert len(found) == 1, (found, lab.rig.log("record.log"))
    return found[0]


@pytest.mark.timeout(400)
def test_the_recording_carries_every_stream_and_the_clock_offsets(lab) -> None:
    import pyxdf

    assert lab.remote_answers == ["OK", "OK", "OK"], lab.rig.log("record.log")
    assert lab.stop_answers == ["OK"]
    streams, _ = pyxdf.load_xdf(_recording(lab), synchronize_clocks=False)
    named = _by_name(streams)
    for name in ("EMG", "EMG-truth", "Camera", "EIFER", "Markers"):
        assert name in named and len(named[name]["time_stamps"]) > 0, (name, sorted(named))
    # offsets measured by the recorder: the value to add to each sender's stamps
    emg_offsets = np.asarray(named["EMG"]["clock_values"])
    assert len(emg_offsets) >= 3 and np.all(np.abs(emg_offsets + CLOCK.offset_s) < 1.5)
    assert np.all(np.abs(np.asarray(named["Camera"]["clock_values"])) < 0.01)
    counter = named["EMG"]["time_series"][:, -1].astype(np.int64)
    assert np.all(np.diff(counter) % 2**24 == 1), "every EMG sample recorded once, in order"


@pytest.mark.timeout(400)
def test_pyxdf_synchronisation_pairs_emg_and_frames_as_live(lab) -> None:
    """Each frame's message named the EMG sample it read (``emg_sample_index``) at its capture
    time + the chain's delay. Offline, in the recording synchronised by pyxdf (the frame's
    stamp from the workstation's clock, the sample's true time from the acquisition host's
    truth stream), that sample lies where the pipeline meant to read it, within 1 ms."""
    import pyxdf

    path = _recording(lab)
    raw = _by_name(pyxdf.load_xdf(path, synchronize_clocks=False, dejitter_timestamps=False)[0])
    synced = _by_name(pyxdf.load_xdf(path, synchronize_clocks=True, dejitter_timestamps=False)[0])
    camera_raw, camera = raw["Camera"]["time_stamps"], synced["Camera"]["time_stamps"]
    truth = synced["EMG-truth"]
    truth_t, truth_k = truth["time_stamps"], truth["time_series"][:, 0]
    rows = [r for r in lab.bus_rows if not r["emg_missing"]]
    assert len(rows) >= 0.8 * WINDOW_S * 15, len(lab.bus_rows)
    t = np.array([r["t"] for r in rows])
    i = np.clip(np.searchsorted(camera_raw, t), 1, len(camera_raw) - 1)
    i = np.where(np.abs(camera_raw[i - 1] - t) < np.abs(camera_raw[i] - t), i - 1, i)
    # the frames of the messages, as recorded (t: the stamp + the pipeline's clock correction,
    # tens of microseconds between two processes of one host; frames are 67 ms apart)
    recorded = np.abs(camera_raw[i] - t) < 0.005
    assert recorded.mean() > 0.9, recorded.mean()
    read_at = camera[i] + 1e-3 * np.array([r["emg_read_offset_ms"] for r in rows])
    k = np.array([r["emg_sample_index"] for r in rows])
    error_ms = 1e3 * (sample_time(k, read_at, truth_t, truth_k) - read_at)[recorded]
    error_ms = error_ms[np.isfinite(error_ms)]
    assert len(error_ms) > 0.8 * recorded.sum()
    offline_p99 = float(np.percentile(np.abs(error_ms), 99))
    live_p99 = {r["check"]: r for r in lab.check["rows"]}[ALIGNMENT]["value"]
    assert offline_p99 < 1.0, (offline_p99, live_p99)
    assert abs(offline_p99 - live_p99) < 0.5, (offline_p99, live_p99)


@pytest.mark.timeout(400)
def test_the_page_from_another_host_needs_its_token(lab) -> None:
    assert lab.page_with_token == 200
    assert lab.page_without_token == 403


@pytest.mark.timeout(400)
def test_the_page_opened_in_chromium_on_another_host_goes_live(lab) -> None:
    if isinstance(lab.tablet, str):
        pytest.skip(lab.tablet)
    assert lab.tablet["errors"] == [], lab.tablet
    assert lab.tablet["conn"] == "live" and lab.tablet["muscle"] > 10, lab.tablet


@pytest.mark.timeout(400)
def test_the_remote_control_refuses_a_host_not_on_its_allow_list(lab) -> None:
    assert lab.stranger_answers == [""], lab.stranger_answers  # closed, unanswered
    assert "refused a connection from " + lab.rig.address("workstation") in lab.rig.log(
        "record.log", tail=100_000
    )
