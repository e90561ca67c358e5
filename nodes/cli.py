"""The ``eifer`` console command: one subcommand per job, each implemented by one module.

A command module defines ``add_arguments(parser)`` and ``run(args) -> int``. Modules are imported
only when their command runs, so ``eifer --help`` stays fast and one broken extra (say, a missing
camera driver) never stops the others.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

# command words -> (module, one-line help)
COMMANDS: dict[tuple[str, ...], tuple[str, str]] = {
    ("demo",): ("nodes.demo", "simulated EMG + camera -> pipeline -> live view of the bus"),
    ("session",): ("nodes.session", "a real session from one TOML file: every node, one status"),
    ("node", "emg"): ("nodes.emg", "EMG acquisition: simulator or bridge for a real amplifier"),
    ("node", "camera"): ("nodes.camera", "camera acquisition: RealSense, webcam or video file"),
    ("node", "protocol"): ("nodes.protocol", "run a recording protocol, emit LSL markers"),
    ("pipeline",): ("nodes.pipeline", "synchronise EMG and video, run models, publish on the bus"),
    ("record",): ("nodes.recorder", "record LSL streams into a session folder (XDF + video)"),
    ("replay",): ("nodes.replay", "replay a session folder or XDF file as LSL streams"),
    ("export",): ("nodes.export", "export a session to MNE / NumPy / CSV"),
    ("synth",): ("nodes.synth", "synthetic participants with ground truth as session folders"),
    ("display",): ("nodes.display.server", "live biofeedback web page fed from the bus"),
    ("streams",): ("nodes.streams", "list the LSL streams visible from this machine"),
    ("listen",): ("nodes.listen", "print what is published on the bus"),
    ("check",): ("nodes.check", "watch the live system for a while, judge it, print one table"),
    ("keys",): ("nodes.keys", "a CURVE key pair for the bus (encrypted, known subscribers only)"),
    ("build-engine",): ("nodes.build_engine", "build TensorRT engines for a bundle"),
    ("flame", "convert"): ("nodes.flame", "a FLAME 2020 pickle -> the .npz the display loads"),
    ("train",): ("nodes.train", "offline trainer: training sets, phase-2 MLPs, reports, bundles"),
}


def _usage() -> str:
    width = max(len(" ".join(words)) for words in COMMANDS)
    lines = ["usage: eifer <command> [options]   (eifer <command> --help for its options)", ""]
    lines += [f"  {' '.join(w):<{width}}  {text}" for w, (_, text) in COMMANDS.items()]
    return "\n".join(lines)


def command_error(argv: Sequence[str]) -> str | None:
    """Why ``argv`` starts with no ``eifer`` command, or None if it starts with one."""
    return None if _match(argv) is not None else _unknown(argv)


def _unknown(argv: Sequence[str]) -> str:
    """The error for a command line that starts with no known command, naming what was given."""
    group = [w for w in COMMANDS if len(w) > 1 and w[0] == argv[0]]
    if group:  # e.g. "node emgg": name the group's commands
        given = " ".join(argv[:2])
        known = ", ".join(" ".join(w) for w in group)
        return f"unknown command {given!r}; use one of {known}"
    return f"unknown command {argv[0]!r} (eifer --help lists the commands)"


def _match(argv: Sequence[str]) -> tuple[tuple[str, ...], list[str]] | None:
    for words in sorted(COMMANDS, key=len, reverse=True):
        if tuple(argv[: len(words)]) == words:
            return words, list(argv[len(words) :])
    return None


LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


def _log_level(text: str) -> str:
    """``--log-level``: a logging level name, any case; argparse reports a bad one in one line."""
    level = text.strip().upper()
    if level not in LOG_LEVELS:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a logging level; use one of {', '.join(LOG_LEVELS)}"
        )
    return level


def _error(words: Sequence[str], message: str) -> int:
    print(f"eifer {' '.join(words)}: error: {message}", file=sys.stderr, flush=True)
    return 1


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    from nodes.processes import follow_parent

    follow_parent()  # a node started by a session ends with it, however the session ends
    matched = _match(argv)
    if matched is None:
        if not argv or argv[0] in {"-h", "--help"}:
            print(_usage())
            return 0
        print(_usage(), file=sys.stderr)
        print(f"eifer: error: {_unknown(argv)}", file=sys.stderr, flush=True)  # last: the cause
        return 2
    words, rest = matched
    module_name, text = COMMANDS[words]
    from nodes.common import restore_sigint

    restore_sigint()  # every command: Ctrl-C works even if the caller ignored SIGINT
    try:
        module = importlib.import_module(module_name)
    except KeyboardInterrupt:
        return 130
    parser = argparse.ArgumentParser(prog="eifer " + " ".join(words), description=text)
    parser.add_argument(
        "--log-level",
        type=_log_level,
        default="INFO",
        metavar="LEVEL",
        help=f"logging level: {', '.join(LOG_LEVELS)} (default: INFO)",
    )
    module.add_arguments(parser)
    args = parser.parse_args(rest)
    logging.basicConfig(
        level=args.log_level, format="%(asctime)s %(name)s %(levelname)s: %(message)s"
    )
    from streaming.errors import EiferError

    try:
        return int(module.run(args) or 0)
    except KeyboardInterrupt:
        return 130
    except EiferError as exc:  # every user-facing fault ends with one clear line
        logging.getLogger("eifer").debug("details", exc_info=True)
        return _error(words, str(exc))
    except OSError as exc:
        # a path the user gave that cannot be read or written (permissions, read-only disk,
        # a file where a folder should be, disk full): the path and the reason are the message
        if exc.filename is None or exc.strerror is None:
            raise
        logging.getLogger("eifer").debug("details", exc_info=True)
        return _error(words, f"{exc.filename}: {exc.strerror}")


if __name__ == "__main__":
    sys.exit(main())
