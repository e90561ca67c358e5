"""``eifer demo``: the whole chain on one machine, with nothing but this repository.

A synthetic participant (``streaming/simulation/participant``, a held-out seed, 7 by default)
performs what the protocol node instructs: its 22-channel facial EMG (the EMG simulator) and its
face, wearing the Fridlund electrodes as in the lab (the participant camera), follow the same
protocol markers, so face and EMG come from one set of activations. A calibration run of the same
participant gives the normalisation profile; the pipeline runs the demo bundle (phase-2 MLPs
trained on synthetic participants 200-204, ``models/demo-mlp``; encoders untrained, issue 12) and
publishes on the bus; the display serves the live page; this terminal shows what is published.
Stream names carry a demo suffix so the demo never picks up a lab's real amplifier.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from nodes.common import (
    add_option_config_arguments,
    count,
    load_option_config,
    non_negative_int,
    port,
    positive_float,
    restore_sigint,
    seconds,
)
from nodes.listen import TerminalView
from nodes.ports import AddressError, check_bus_address, check_port_free
from nodes.processes import ProcessGroup
from streaming.bus.pubsub import Subscriber
from streaming.errors import EiferError

WORK_PREFIX = "eifer-demo-"
PID_FILE = "demo.pid"  # in the work folder while the demo runs; a dead pid marks it stale
DEMO_PARTICIPANT_SEED = 7  # held out: not one of the demo MLPs' training seeds (200-204)
CALIBRATION_S = 340.0  # the functional block of the protocol (11 movements x 3 x 10 s + lead-in)
CALIBRATION_STEPS = 10
# the encoders run on the CPU here, where a busy machine stalls a frame 50-100 ms now and then:
# a frame may wait this long (not the pipeline's 50 ms) before a newer one replaces it, so such
# stalls delay frames instead of dropping them (sustained overload still skips, and counts)
MAX_QUEUE_MS = 250.0  # progress lines while the calibration run is simulated


class DemoError(EiferError):
    """The demo cannot run as asked (e.g. a participant seed the bundle was trained on)."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--seconds",
        type=seconds,
        help="stop after this many seconds of running, set-up not counted (default: Ctrl-C)",
    )
    parser.add_argument("--bus", default="tcp://127.0.0.1:5556", help="bus address to publish on")
    parser.add_argument(
        "--protocol-bus", default="tcp://127.0.0.1:5557", help="the protocol node's bus address"
    )
    parser.add_argument(
        "--headless", action="store_true", help="no display process (tests, CI, servers)"
    )
    parser.add_argument("--no-display", action="store_true", help="the same as --headless")
    parser.add_argument("--no-models", action="store_true", help="EMG only: no demo model bundle")
    parser.add_argument("--display-port", type=port, default=8765, help="web display port")
    parser.add_argument("--every", type=count, default=15, help="print every Nth frame")
    parser.add_argument(
        "--participant-seed",
        type=non_negative_int,
        default=DEMO_PARTICIPANT_SEED,
        help="the synthetic participant (face, EMG, calibration); not a training seed",
    )
    parser.add_argument(
        "--camera-size", default="640x360", help="participant camera WIDTHxHEIGHT (30 fps)"
    )
    parser.add_argument(
        "--camera-rate",
        type=positive_float,
        default=30.0,
        help="participant camera frame rate (Hz)",
    )
    parser.add_argument(
        "--occlusion",
        choices=["fridlund", "none"],
        default="fridlund",
        help="electrodes on the face (fridlund, as in the lab) or none",
    )
    parser.add_argument(
        "--protocol-speed", type=positive_float, default=1.0, help="run the protocol N times faster"
    )
    parser.add_argument(
        "--suffix", default="", help="stream-name suffix (default demo<pid>): EMG-<suffix>, ..."
    )
    parser.add_argument(
        "--weights", default="", help="demo weight folder (default models/demo-mlp)"
    )
    add_option_config_arguments(parser, example="display_port=8766")


def _weights(folder: str = "") -> Path:
    from eifer_models.demo_weights import DEMO_WEIGHTS

    return Path(folder) if folder else DEMO_WEIGHTS


def training_seeds(weights: str = "") -> list[int]:
    """The participant seeds the demo's models were trained on: the MLPs' and the encoders'
    (their provenance)."""
    from eifer_models.demo_weights import read_encoders_provenance, read_provenance

    seeds = [int(s) for s in read_provenance(_weights(weights))["participant_seeds"]]
    encoders = read_encoders_provenance()
    if encoders is not None:
        seeds += [int(s) for s in encoders["train_participant_seeds"]]
    return sorted(set(seeds))


def _demo_bundle(directory: Path, weights: str = "") -> Path | None:
    """The demo bundle: the committed trained MLPs and encoders (``models/demo-mlp``,
    ``models/demo-encoders``; without the latter, seeded random encoders, and the manifest
    says so)."""
    try:
        from eifer_models.demo_weights import create_trained_demo_bundle
    except ImportError:
        return None
    return create_trained_demo_bundle(directory / "demo-bundle", weights=_weights(weights)).path


def _demo_profile(
    directory: Path,
    seconds: float = CALIBRATION_S,
    *,
    seed: int = DEMO_PARTICIPANT_SEED,
    weights: str = "",
    say: Callable[[str], None] | None = None,
) -> Path:
    """The participant's normalisation profile, as a lab makes it: a calibration recording of
    the protocol's functional movements (here simulated for the demo's participant ``seed``),
    through the same online chain the pipeline runs, divided by the bundle's normalisation
    method (EIFER.md: per-participant max normalisation; the pipeline refuses a mismatch)."""
    import numpy as np

    from nodes.emg import load_node_config
    from simulation.emg import EmgSimulator
    from streaming.pipeline.profile import Normalisation, compute_profile

    try:
        from eifer_models.demo_weights import read_provenance

        provenance = read_provenance(_weights(weights))
        normalisation = Normalisation.from_dict(provenance["emg_normalisation"], "demo weights")
        feature = str(provenance["feature"]["name"])
    except ImportError:
        normalisation, feature = None, "low_latency"
    config = load_node_config().simulator.model_copy(update={"seed": seed})
    simulator = EmgSimulator(config)
    total = int(seconds * simulator.rate_hz)
    parts = []
    for step in range(CALIBRATION_STEPS):
        n = total * (step + 1) // CALIBRATION_STEPS - total * step // CALIBRATION_STEPS
        parts.append(simulator.generate(n)[0])
        if say is not None:
            say(f"calibration: {100 * (step + 1) // CALIBRATION_STEPS:3d} % "
                f"of {seconds:.0f} s of functional movements simulated")  # fmt: skip
    profile = compute_profile(
        np.concatenate(parts), simulator.rate_hz, simulator.labels,
        participant=f"demo-seed{seed}", feature=feature, normalisation=normalisation,
    )  # fmt: skip
    return profile.save(directory / "demo-profile.json")


def check_addresses(args: argparse.Namespace) -> None:
    """Fail in a second, with one line, when an address is malformed or taken: before the
    models load, and before this demo could print another pipeline's data as its own."""
    if args.bus.strip() == args.protocol_bus.strip():
        raise AddressError(f"--bus and --protocol-bus are the same address ({args.bus})")
    check_bus_address(args.bus, "--bus")
    check_bus_address(args.protocol_bus, "--protocol-bus")
    if not args.headless:
        if not 0 < args.display_port < 65536:
            raise AddressError(f"--display-port {args.display_port}: not a TCP port (1..65535)")
        check_port_free("127.0.0.1", args.display_port, "--display-port")


def check_options(args: argparse.Namespace) -> None:
    """One line for options that cannot work, before anything starts."""
    from nodes.camera import parse_size

    args.headless = bool(args.headless or args.no_display)
    parse_size(args.camera_size)
    if not 0 < args.camera_rate <= 120:
        raise DemoError(f"--camera-rate {args.camera_rate:g}: must be in (0, 120] Hz")
    if args.protocol_speed <= 0:
        raise DemoError(f"--protocol-speed {args.protocol_speed:g}: must be > 0")
    if args.suffix and not args.suffix.replace("-", "").replace("_", "").isalnum():
        raise DemoError(f"--suffix {args.suffix!r}: letters, digits, - and _ only")
    if not args.no_models and args.participant_seed in training_seeds(args.weights):
        raise DemoError(
            f"--participant-seed {args.participant_seed}: the demo's models were trained on this "
            f"participant ({_weights(args.weights)}); choose a held-out seed, e.g. "
            f"{DEMO_PARTICIPANT_SEED}"
        )


def remove_stale_work_folders(parent: Path | None = None) -> list[Path]:
    """Remove work folders of demos that were killed (SIGKILL leaves no chance to clean up)."""
    removed = []
    for folder in Path(parent or tempfile.gettempdir()).glob(WORK_PREFIX + "*"):
        try:
            pid = int((folder / PID_FILE).read_text().strip())
        except (OSError, ValueError):
            continue  # not ours, or kept on purpose (a failed demo's logs)
        if not _alive(pid):
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _stop_on(signum: int, _frame: object) -> None:
    """SIGTERM (``timeout``, ``kill``) and SIGHUP (terminal closed) end the demo like Ctrl-C."""
    raise KeyboardInterrupt(signal.Signals(signum).name)


def run(args: argparse.Namespace) -> int:
    load_option_config(args)
    check_options(args)
    check_addresses(args)
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _stop_on)
    restore_sigint()  # Ctrl-C is the documented way to stop
    started = time.monotonic()
    remove_stale_work_folders()
    work = Path(tempfile.mkdtemp(prefix=WORK_PREFIX))
    (work / PID_FILE).write_text(str(os.getpid()))
    os.environ.setdefault("LSLAPICFG", str(_lsl_config(work)))
    group = ProcessGroup(work)
    print(f"EIFER live demo: logs in {work}", flush=True)
    status, frames = 0, 0
    try:
        status, frames = _run_demo(args, group, work, started)
    except KeyboardInterrupt:  # Ctrl-C, SIGTERM or SIGHUP, at any stage (even calibration)
        pass
    finally:
        group.stop()
    if status == 0:
        shutil.rmtree(work, ignore_errors=True)
    else:
        (work / PID_FILE).unlink(missing_ok=True)  # keep the logs of a failed demo
    try:  # the terminal may be gone (SIGHUP)
        print(f"\ndemo stopped after {frames} frames", flush=True)
        if status != 0:
            print(f"logs kept in {work}", flush=True)
    except OSError:
        pass
    return status


def stream_names(suffix: str) -> dict[str, str]:
    """The demo's LSL stream names (``eifer check --set emg.name=... video.name=...``)."""
    return {
        "emg": f"EMG-{suffix}",
        "camera": f"Camera-{suffix}",
        "markers": f"Markers-{suffix}",
        "predictions": f"EIFER-{suffix}",
    }


def _node_argvs(args: argparse.Namespace, names: dict[str, str]) -> dict[str, list[str]]:
    """Each node's ``eifer`` arguments (``configs/sessions/demo.toml`` says the same)."""
    seed, markers = args.participant_seed, names["markers"]
    return {
        "display": ["display", "--set", f'bus_address="{args.bus}"',
                    "--set", f'protocol_address="{args.protocol_bus}"',
                    "--set", f"port={args.display_port}",
                    # the truth of the simulated sources, drawn beside the predictions
                    "--set", f'video_truth="{names["camera"]}-truth"',
                    "--set", f'emg_truth="{names["emg"]}-truth"'],
        # the participant performs what the protocol node instructs (its LSL markers): the EMG
        # simulator and the face follow the same markers with the same seed (one activation)
        "emg": ["node", "emg", "--name", names["emg"], "--set", f"simulator.seed={seed}",
                "--set", 'simulator.script.kind="markers"',
                "--set", f'simulator.script.markers_stream="{markers}"'],
        "camera": ["node", "camera", "--source", "participant", "--name", names["camera"],
                   "--size", args.camera_size, "--set", f"rate_hz={args.camera_rate:g}",
                   "--set", f'occlusion="{args.occlusion}"',
                   "--set", 'participant.follow="markers"',
                   "--set", f"participant.simulator.seed={seed}",
                   "--set", f'participant.simulator.script.markers_stream="{markers}"'],
        "pipeline": ["pipeline", "--set", f'emg.name="{names["emg"]}"',
                     "--set", f'video.name="{names["camera"]}"',
                     "--set", f'output.bus_address="{args.bus}"',
                     "--set", f'output.lsl_name="{names["predictions"]}"',
                     "--set", f"video.max_queue_ms={MAX_QUEUE_MS:g}"],
        "protocol": ["node", "protocol", "--speed", f"{args.protocol_speed:g}",
                     "--set", f'stream_name="{markers}"', "--set", f'bus="{args.protocol_bus}"',
                     "--set", "wait_for_consumers_s=10"],
    }  # fmt: skip


def _say(text: str) -> None:
    print(text, flush=True)


def _bundle_line(bundle: Path) -> str:
    from eifer_models.bundle import load_bundle

    manifest = load_bundle(bundle, verify=False).manifest
    return f"models: {bundle}\n  {manifest.description}"


def _run_demo(
    args: argparse.Namespace, group: ProcessGroup, work: Path, started: float
) -> tuple[int, int]:
    names = stream_names(args.suffix or f"demo{os.getpid()}")
    argv = _node_argvs(args, names)
    if not args.headless:  # the page first: it is up while the models and calibration prepare
        group.start("display", argv["display"])
        _say(f"display: http://127.0.0.1:{args.display_port}/")
    _say(
        f"streams: EMG {names['emg']!r} (truth {names['emg']}-truth), camera {names['camera']!r} "
        f"(truth {names['camera']}-truth), markers {names['markers']!r}, bus {args.bus}"
    )
    _say(
        f"participant: synthetic, seed {args.participant_seed}, {args.camera_size} at "
        f"{args.camera_rate:g} fps, "
        f"electrodes {args.occlusion}"
    )
    pipeline = argv["pipeline"]
    if not args.no_models:
        _say("models: assembling the demo bundle (trained MLPs and encoders) ...")
        bundle = _demo_bundle(work, args.weights)
        if bundle is not None:
            pipeline += ["--bundle", str(bundle)]
            _say(_bundle_line(bundle))
    _say("calibration: simulating the participant's calibration run for the profile ...")
    profile = _demo_profile(work, seed=args.participant_seed, weights=args.weights, say=_say)
    pipeline += ["--profile", str(profile)]
    _say(f"calibration: profile {profile.name} done")
    for name in ("emg", "camera"):
        group.start(name, argv[name])
    group.start("pipeline", pipeline)
    _say("pipeline: starting (the protocol starts with its first published frame)")
    _say("press Ctrl-C to stop\n")
    return _watch(args, group, argv["protocol"], started)


def _watch(
    args: argparse.Namespace, group: ProcessGroup, protocol: list[str], started: float
) -> tuple[int, int]:
    """Print what is published until ``--seconds`` pass, Ctrl-C, or a node fails."""
    status = 0
    deadline = None if args.seconds is None else time.monotonic() + args.seconds
    frames = 0
    view = TerminalView()  # what breaks the bus contract is shown as the reason, and counted
    try:
        with Subscriber([args.bus, args.protocol_bus]) as subscriber:
            while deadline is None or time.monotonic() < deadline:
                message: Any = subscriber.receive(0.5)
                failed = group.failed()
                if failed is not None:
                    print(
                        f"\n{failed.name} stopped (exit {failed.exit_code}):\n{failed.log_tail()}"
                    )
                    status = 1
                    break
                if message is None:
                    continue
                if message.topic == "muscle":
                    frames += 1
                    if frames == 1:
                        _say(f"first frame published {time.monotonic() - started:.1f} s after "
                             "the demo started")  # fmt: skip
                        group.start("protocol", protocol, may_finish=True)
                        _say(f"protocol: started (speed x{args.protocol_speed:g})")
                    if frames % max(args.every, 1):
                        continue
                elif message.topic in ("expression", "face"):
                    continue  # every frame / 5 per second: the page shows them
                print(view.line(message), flush=True)
    except KeyboardInterrupt:  # Ctrl-C: the normal end of the demo
        pass
    for line in view.summary():
        print(line)
    return status, frames


def _lsl_config(work: Path) -> Path:
    """Keep the demo's streams on this machine."""
    path = work / "lsl_api.cfg"
    path.write_text("[multicast]\nResolveScope = machine\n\n[log]\nlevel = -2\n")
    return path
