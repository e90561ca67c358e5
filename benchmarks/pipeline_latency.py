"""Pipeline latency per frame, capture to publish (p50/p99), on this CPU.

Runs the real EMG node (simulator, 22 channels at 4096 Hz) and camera node (synthetic face) as
separate processes and the pipeline in this one, in three cases: EMG only (``align = "delay"``),
and with the demo model bundle (face crop + encoders + MLPs on the selected backend) in both
alignment modes, ``"delay"`` (the envelope read at t + D) and ``"latest"`` (at t). Per case it
reports every stage's p50/p99 from the pipeline's ``status``, published / captured measured
from the bus (``muscle`` messages over the frames the camera captured in their span), the overlap's own figures
(``video_branch``, ``video_to_join``: the video branch's result waiting for the EMG,
``emg_to_join``: the envelope waiting for the video branch) and D. "capture_to_publish" is LSL time at publish minus
the frame's capture stamp; it includes the bounded wait for EMG up to the frame's time (the EMG
arrives in 7.8 ms chunks), which is the floor of any frame-synchronised EMG pipeline.

The pipeline gets a participant profile (per-channel maxima of a simulated 200 s calibration run
through the same chain, as ``eifer demo`` makes it), so the EMG is normalised and EMG2Exp runs;
a subscriber on the pipeline's bus counts the ``expression`` messages whose ``phi_emg`` is finite,
and the benchmark fails if fewer than 90 % of them are (EMG2Exp did not run). Measurement
starts 5 s after the EMG first reaches the pipeline.

``--quality both`` (the default) runs every case twice in the same run, without and with the
electrode-quality monitor (``quality.enabled``; issue 21: it must not move the latency), so the
two are measured on the same machine under the same load; ``on`` / ``off`` run one.

    python -m benchmarks.pipeline_latency [--seconds 20] [--size 1280x720] [--cases ...]
        [--quality both|on|off]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

from benchmarks.pipeline_nodes import machine, source_nodes, use_loopback_lsl, write_results


def make_profile(directory: Path, seconds: float = 200.0) -> Path:
    """Per-channel maxima of a simulated calibration run (seed 1) through the ``low_latency``
    chain: the profile ``eifer demo`` computes."""
    from nodes.emg import load_node_config
    from simulation.emg import EmgSimulator
    from streaming.pipeline.profile import compute_profile

    simulator = EmgSimulator(load_node_config().simulator.model_copy(update={"seed": 1}))
    emg_uv, _ = simulator.generate(int(seconds * simulator.rate_hz))
    profile = compute_profile(
        emg_uv, simulator.rate_hz, simulator.labels, participant="bench", feature="low_latency"
    )
    return profile.save(directory / "bench-profile.json")


class BusCounter(threading.Thread):
    """Watches the pipeline's bus: notices the first ``muscle`` message with EMG present, then
    (once ``counting``) counts ``expression`` messages and those with a finite ``phi_emg``."""

    def __init__(self, address: str) -> None:
        super().__init__(daemon=True)
        from streaming.bus.pubsub import Subscriber

        self.subscriber = Subscriber(address, ["expression", "muscle"])
        self.emg_connected = threading.Event()
        self.messages = 0
        self.phi_emg_finite = 0
        self.muscle = 0  # muscle messages while counting, and their capture stamps' span
        self.first_t: float | None = None
        self.last_t: float | None = None
        self.counting = False
        self.done = threading.Event()

    def run(self) -> None:
        import numpy as np

        while not self.done.is_set():
            message = self.subscriber.receive(0.2)
            if message is None:
                continue
            if message.topic == "muscle":
                if message.fields.get("emg_missing") is False:
                    self.emg_connected.set()
                if self.counting:
                    self.muscle += 1
                    self.first_t = message.t if self.first_t is None else self.first_t
                    self.last_t = message.t
                continue
            if not self.counting:
                continue
            self.messages += 1
            phi = message.fields.get("phi_emg")
            if phi is not None and np.all(np.isfinite(np.asarray(phi, dtype=float))):
                self.phi_emg_finite += 1
        self.subscriber.close()


def published_over_captured(counter: BusCounter, rate_hz: float = 30.0) -> dict[str, float]:
    """From the bus alone: ``muscle`` messages received while measuring, over the frames the
    camera captured between the first and the last of them (their capture stamps' span at the
    camera's 30 fps), not the pipeline's own counters."""
    if counter.first_t is None or counter.last_t is None:
        return {"published": 0, "captured": 0, "ratio": float("nan")}
    captured = round((counter.last_t - counter.first_t) * rate_hz) + 1
    return {"published": counter.muscle, "captured": captured, "ratio": counter.muscle / captured}


def run_case(
    seconds: float,
    size: str,
    bundle: Path | None,
    profile: Path,
    tag: str,
    face_preview_hz: float | None = None,
    align: str = "delay",
    quality: bool = True,
) -> dict:
    from streaming.bus.pubsub import Publisher
    from streaming.config import validate
    from streaming.pipeline.pipeline import Pipeline, PipelineConfig

    with source_nodes(f"bench-{tag}", size) as (emg, cam):
        config = validate(
            PipelineConfig,
            {
                "emg": {"name": emg},
                "video": {"name": cam},
                "output": {"lsl_name": f"EIFER-bench-{tag}"}
                | ({} if face_preview_hz is None else {"face_preview_hz": face_preview_hz}),
                "models": {"bundle": str(bundle) if bundle else ""},
                "sync": {"align": align},
                "quality": {"enabled": quality},
                "profile": str(profile),
            },
        )
        models = None
        if bundle is not None:
            from eifer_models.live import FramePredictor

            models = FramePredictor.from_config(config.models)
        publisher = Publisher("tcp://127.0.0.1:*")
        pipeline = Pipeline(config, models=models, publisher=publisher)
        counter = BusCounter(publisher.address)
        counter.start()
        failure: list[str] = []
        frames_at_start: dict[str, int] = {}

        def control() -> None:
            # measure after everything connected and warmed up: EMG flowing, then 5 s more
            if not counter.emg_connected.wait(180.0):
                failure.append("the EMG node's stream never reached the pipeline within 180 s")
                pipeline.stop()
                return
            time.sleep(5.0)
            pipeline.latency.__init__()
            frames_at_start.update(pipeline.status()["frames"])
            counter.counting = True
            time.sleep(seconds)
            pipeline.stop()

        threading.Thread(target=control, daemon=True).start()
        pipeline.run()
        summary = pipeline.latency.summary()
        status = pipeline.status()
        time.sleep(0.5)  # the last messages reach the subscriber
        counter.done.set()
        counter.join(5)
        if failure:
            raise RuntimeError(failure[0])
    if bundle is not None and counter.phi_emg_finite < 0.9 * max(1, counter.messages):
        raise RuntimeError(
            f"EMG2Exp did not run: phi_emg finite in {counter.phi_emg_finite} of "
            f"{counter.messages} expression messages; pipeline errors: {status['errors']}"
        )
    return {
        "models": bundle is not None,
        "align": align,
        "quality": quality,
        "emg_group_delay_ms": status.get("emg_group_delay_ms"),
        "overlap": status.get("overlap", False),
        "backend": status["backend"],
        "profile": status.get("profile"),
        "frames": status["frames"],
        "frames_measured": {k: v - frames_at_start.get(k, 0) for k, v in status["frames"].items()},
        "expression_messages": counter.messages,
        "bus": published_over_captured(counter),
        "phi_emg_finite": counter.phi_emg_finite,
        "errors": status["errors"],
        "latency_ms": summary,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--size", default="1280x720", help="camera frame size")
    parser.add_argument(
        "--cases",
        nargs="+",
        default=["emg-delay", "models-delay", "models-latest"],
        choices=["emg-delay", "emg-latest", "models-delay", "models-latest"],
    )
    parser.add_argument(
        "--quality",
        choices=["both", "on", "off"],
        default="both",
        help="the electrode-quality monitor: each case without and with it (both), or one",
    )
    parser.add_argument(
        "--results", default="pipeline_latency", help="benchmarks/results/<NAME>.json"
    )
    parser.add_argument(
        "--bundle",
        choices=["smirk", "demo"],
        default="smirk",
        help="smirk: SMIRK's three MobileNetV3 at 224 px (seeded, the heavier encoders); demo: the "
        "demo's bundle (trained compact encoders at 64 px, trained MLPs)",
    )
    args = parser.parse_args(argv)
    use_loopback_lsl()
    from eifer_models.bundle import create_demo_bundle

    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as work:
        if args.bundle == "demo":
            from simulation.demo_preparation import demo_bundle

            bundle = demo_bundle(Path(work) / "bundle")
        else:
            bundle = create_demo_bundle(Path(work) / "bundle").path
        profile = make_profile(Path(work))
        cases = []
        qualities = {"both": [False, True], "on": [True], "off": [False]}[args.quality]
        for case in args.cases:
            kind, align = case.split("-")
            with_models = bundle if kind == "models" else None
            for quality in qualities:
                tag = f"{kind}{align}{'q' if quality else 'n'}{os.getpid()}"
                cases.append(
                    run_case(args.seconds, args.size, with_models, profile, tag, align=align,
                             quality=quality)
                )  # fmt: skip
    print(f"pipeline latency, {args.size} frames at 30 fps, {args.seconds:g} s per case")
    print(f"{'case':<50} {'stage':<20} {'p50 ms':>8} {'p99 ms':>8} {'n':>6}")
    for case in cases:
        name = f"models ({case['backend']})" if case["models"] else "EMG only"
        name = f"{name}, {case['align']}, quality {'on' if case['quality'] else 'off'}"
        for stage, row in sorted(case["latency_ms"].items()):
            print(f"{name:<50} {stage:<20} {row['p50']:>8.2f} {row['p99']:>8.2f} {row['n']:>6}")
        print(f"{name:<50} frames while measured {case['frames_measured']}")
        print(f"{name:<50} D = {case['emg_group_delay_ms']} ms, overlap {case['overlap']}")
        bus = case["bus"]
        print(
            f"{name:<50} from the bus: {bus['published']} muscle messages / {bus['captured']} "
            f"frames captured = {bus['ratio']:.3f}"
        )
        if case["models"]:
            print(
                f"{name:<50} phi_emg finite in {case['phi_emg_finite']} of "
                f"{case['expression_messages']} expression messages"
            )
    write_results(
        args.results,
        {
            "seconds_per_case": args.seconds,
            "bundle": args.bundle,
            "frame_size": args.size,
            "machine": machine(),
            "load_average_1min": {"before": load_before, "after": os.getloadavg()[0]},
            "cases": cases,
        },
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
