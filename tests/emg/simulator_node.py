"""The EMG simulator node (``eifer node emg``) in a child process: a real ``EMG`` stream and its
truth, with the faults and script a test asks for (``--set`` overrides of the node config)."""

from __future__ import annotations

import multiprocessing as mp
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

CTX = mp.get_context("spawn")  # no fork of a process holding LSL or torch


def node_main(overrides: list[str], stop: Any) -> None:
    from nodes.emg import load_node_config, run_node

    run_node(load_node_config(None, overrides), stop)


@contextmanager
def simulator_node(name: str, faults: str = "", *overrides: str) -> Iterator[str]:
    """The node streaming ``name`` (source id ``name``, truth ``<name>-truth``) with
    ``simulator.faults = [<faults>]`` and any other ``overrides``; stopped on exit."""
    stop = CTX.Event()
    settings = [f'stream.name="{name}"', f'stream.source_id="{name}"',
                f'stream.truth_name="{name}-truth"', *overrides]  # fmt: skip
    if faults:
        settings.append(f"simulator.faults=[{faults}]")
    process = CTX.Process(target=node_main, args=(settings, stop), daemon=True)
    process.start()
    try:
        yield name
    finally:
        stop.set()
        process.join(10)
        if process.is_alive():
            process.kill()
