"""``eifer demo``: the whole chain on one machine, with nothing but this repository.

Simulated 22-channel facial EMG (a Mimics-and-Muscles movement script) and a synthetic camera
(a real face photograph, gently moving) stream over LSL; the pipeline synchronises them, runs the
models of a demo bundle (random weights, labelled untrained) and publishes on the bus; the display
serves the live page; this terminal shows what is published. Stream names carry a demo suffix so
the demo never picks up a lab's real amplifier.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import tempfile
import time
from pathlib import Path

from nodes.common import add_option_config_arguments, load_option_config
from nodes.listen import TerminalView
from nodes.ports import AddressError, check_bus_address, check_port_free
from nodes.processes import ProcessGroup
from streaming.bus import Subscriber

WORK_PREFIX = "eifer-demo-"
PID_FILE = "demo.pid"  # in the work folder while the demo runs; a dead pid marks it stale


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--seconds", type=float, help="stop after this many seconds (default: Ctrl-C)"
    )
    parser.add_argument("--bus", default="tcp://127.0.0.1:5556", help="bus address to publish on")
    parser.add_argument(
        "--protocol-bus", default="tcp://127.0.0.1:5557", help="the protocol node's bus address"
    )
    parser.add_argument("--no-display", action="store_true", help="do not start the web display")
    parser.add_argument("--no-models", action="store_true", help="EMG only: no demo model bundle")
    parser.add_argument("--display-port", type=int, default=8765, help="web display port")
    parser.add_argument("--every", type=int, default=15, help="print every Nth frame")
    add_option_config_arguments(parser, example="display_port=8766")


def _demo_bundle(directory: Path) -> Path | None:
    """A demo bundle with seeded random weights (manifest: trained = false)."""
    try:
        from eifer_models.bundle import create_demo_bundle
    except ImportError:
        return None
    return create_demo_bundle(directory / "demo-bundle").path


def _demo_profile(directory: Path, seconds: float = 200.0) -> Path:
    """The participant's normalisation profile, as a lab makes it: per-channel maxima of a
    calibration recording of the functional movements (here simulated, seed 1), computed with the
    same online chain the pipeline runs (EIFER.md: per-participant max normalisation)."""
    from nodes.emg import load_node_config
    from streaming.profile import compute_profile
    from streaming.simulation.emg import EmgSimulator

    config = load_node_config().simulator.model_copy(update={"seed": 1})
    simulator = EmgSimulator(config)
    emg_uv, _ = simulator.generate(int(seconds * simulator.rate_hz))
    profile = compute_profile(
        emg_uv, simulator.rate_hz, simulator.labels, participant="demo", feature="low_latency"
    )
    return profile.save(directory / "demo-profile.json")


def check_addresses(args: argparse.Namespace) -> None:
    """Fail in a second, with one line, when an address is malformed or taken: before the
    models load, and before this demo could print another pipeline's data as its own."""
    if args.bus.strip() == args.protocol_bus.strip():
        raise AddressError(f"--bus and --protocol-bus are the same address ({args.bus})")
    check_bus_address(args.bus, "--bus")
    check_bus_address(args.protocol_bus, "--protocol-bus")
    if not args.no_display:
        if not 0 < args.display_port < 65536:
            raise AddressError(f"--display-port {args.display_port}: not a TCP port (1..65535)")
        check_port_free("127.0.0.1", args.display_port, "--display-port")


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
    check_addresses(args)
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _stop_on)
    # Ctrl-C is the documented way to stop, even when a script started us with SIGINT ignored
    signal.signal(signal.SIGINT, signal.default_int_handler)
    remove_stale_work_folders()
    work = Path(tempfile.mkdtemp(prefix=WORK_PREFIX))
    (work / PID_FILE).write_text(str(os.getpid()))
    suffix = f"demo{os.getpid()}"
    emg_name, camera_name = f"EMG-{suffix}", f"Camera-{suffix}"
    os.environ.setdefault("LSLAPICFG", str(_lsl_config(work)))
    group = ProcessGroup(work)
    print(f"EIFER live demo: logs in {work}", flush=True)
    status, frames = 0, 0
    try:
        status, frames = _run_demo(args, group, work, suffix, emg_name, camera_name)
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


def _run_demo(
    args: argparse.Namespace,
    group: ProcessGroup,
    work: Path,
    suffix: str,
    emg_name: str,
    camera_name: str,
) -> tuple[int, int]:
    markers = f"Markers-{suffix}"
    # the simulated participant performs what the protocol node instructs (its LSL markers)
    group.start(
        "emg",
        ["node", "emg", "--name", emg_name,
         "--set", 'simulator.script.kind="markers"',
         "--set", f'simulator.script.markers_stream="{markers}"'],
    )  # fmt: skip
    group.start(
        "protocol",
        [
            "node",
            "protocol",
            "--set",
            f'stream_name="{markers}"',
            "--set",
            f'bus="{args.protocol_bus}"',
        ],
        may_finish=True,
    )
    camera = ["node", "camera", "--source", "synthetic", "--name", camera_name, "--size", "640x480"]
    group.start("camera", camera)
    pipeline = [
        "pipeline",
        "--set", f'emg.name="{emg_name}"',
        "--set", f'video.name="{camera_name}"',
        "--set", f'output.bus_address="{args.bus}"',
        "--set", f'output.lsl_name="EIFER-{suffix}"',
    ]  # fmt: skip
    bundle = None if args.no_models else _demo_bundle(work)
    if bundle is not None:
        pipeline += ["--bundle", str(bundle)]
        print(
            f"models: demo bundle {bundle} (random weights, untrained: predictions are noise)",
            flush=True,
        )
    print(
        "calibration: computing the participant profile from a simulated calibration run ...",
        flush=True,
    )
    pipeline += ["--profile", str(_demo_profile(work))]
    group.start("pipeline", pipeline)
    if not args.no_display:
        group.start(
            "display",
            [
                "display",
                "--set",
                f'bus_address="{args.bus}"',
                "--set",
                f'protocol_address="{args.protocol_bus}"',
                "--set",
                f"port={args.display_port}",
            ],
        )
        print(f"display: http://127.0.0.1:{args.display_port}/", flush=True)
    print("press Ctrl-C to stop\n", flush=True)
    status = 0
    deadline = None if args.seconds is None else time.monotonic() + args.seconds
    frames = 0
    view = TerminalView()  # what breaks the bus contract is shown as the reason, and counted
    try:
        with Subscriber([args.bus, args.protocol_bus]) as subscriber:
            while deadline is None or time.monotonic() < deadline:
                message = subscriber.receive(0.5)
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
                    if frames % max(args.every, 1):
                        continue
                elif message.topic == "expression":
                    continue
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
