"""``eifer export --to bids``: a recorded session's EMG as BIDS EMG through MNE-BIDS.

BIDS has had an EMG datatype since BIDS 1.11 (BEP042); MNE-BIDS writes it from 0.17 on
(``mne_bids.config.ALLOWED_DATATYPES`` holds ``"emg"``; data as EDF/BDF, converted through
``edfio``). What is written: ``sub-<s>/[ses-<s>/]emg/`` with the EMG (BDF, 24 bit: microvolt
resolution kept), ``_emg.json`` (sampling rate, power-line frequency, placement scheme: the
session's electrode scheme, bipolar reference), ``_channels.tsv`` (EMG channels; the counter as
MISC; ``status`` bad for the channels the electrode-quality stream calls bad throughout),
``_events.tsv`` from the protocol markers (movement trials with onset and duration) and the bad
stretches (``BAD_<reason>``; events.tsv has no channel column, the FIF export keeps it), plus
the dataset's ``participants.tsv``, ``dataset_description.json`` and ``scans.tsv``.

What is not written, and why: the video and its frame index (BIDS EMG defines no video; they
stay in the session folder), the model predictions and any other stream (no BIDS datatype).
The export lists them, so nothing is dropped silently. An MNE-BIDS without EMG support gets one
line saying so and which version is needed.
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path
from typing import Any

from streaming.acquisition.electrodes import load_scheme
from streaming.dsp.quality_codes import STREAM_TYPE as QUALITY_TYPE
from streaming.errors import SessionFileError
from streaming.optional import require
from streaming.recording.export import emg_to_raw, require_samples
from streaming.recording.session_reader import Recording, load_recording

__all__ = ["BidsLabels", "bids_labels", "export_bids", "left_out"]

log = logging.getLogger(__name__)

MIN_MNE_BIDS = "0.17"


class BidsLabels(dict[str, Any]):
    """subject, session, task, run, acquisition (None where absent)."""


def _session_info(path: Path) -> dict[str, Any]:
    """``session.json`` of a session folder, or ``<stem>_session.json`` beside a templated XDF."""
    candidates = (
        [path / "session.json"]
        if path.is_dir()
        else [path.with_name(path.stem + "_session.json"), path.with_name("session.json")]
    )
    for candidate in candidates:
        if candidate.is_file():
            try:
                data = json.loads(candidate.read_text())
            except json.JSONDecodeError as exc:
                raise SessionFileError(f"{candidate}: not valid JSON ({exc})") from None
            return data if isinstance(data, dict) else {}
    return {}


def _label(value: object) -> str:
    """BIDS labels are letters and digits only; anything else is dropped."""
    return re.sub(r"[^A-Za-z0-9]", "", str(value or ""))


def bids_labels(path: Path, info: dict[str, Any], given: dict[str, Any]) -> BidsLabels:
    """The entities: given on the command line, else the recording's file-name fields
    (LabRecorder's), else ``session.json``; the task defaults to the protocol's name."""
    fields = info.get("file_name_fields") or {}
    run_in_name = re.search(r"_run-(\d+)", path.name)
    labels = BidsLabels(
        subject=given.get("subject") or fields.get("participant") or info.get("participant"),
        session=given.get("session") or fields.get("session") or None,
        task=given.get("task") or fields.get("task") or info.get("protocol") or None,
        run=given.get("run") or (int(run_in_name[1]) if run_in_name else fields.get("run")),
        acquisition=given.get("acquisition") or fields.get("acquisition") or None,
    )
    for key in ("subject", "session", "task", "acquisition"):
        if labels[key] is not None:
            cleaned = _label(labels[key])
            if cleaned != str(labels[key]):
                log.warning(
                    "BIDS %s %r written as %r (letters and digits only)", key, labels[key], cleaned
                )
            labels[key] = cleaned or None
    missing = [k for k in ("subject", "task") if not labels[k]]
    if missing:
        raise SessionFileError(
            f"{path}: BIDS needs a {' and a '.join(missing)} label; "
            f"give --{' --'.join(missing)} (not found in session.json)"
        )
    return labels


def left_out(recording: Recording, emg_name: str) -> list[str]:
    """The streams BIDS EMG has no place for, each with the reason."""
    reasons = []
    for stream in recording.streams:
        if stream.name == emg_name or stream.type == "Markers":
            continue
        if stream.type == QUALITY_TYPE:  # in channels.tsv (status) and events.tsv (BAD_*)
            continue
        if stream.video is not None:
            reasons.append(
                f"{stream.out_name} (video {stream.video.path.name}: BIDS EMG defines no video)"
            )
        else:
            reasons.append(f"{stream.name} (type {stream.type}: no BIDS datatype)")
    return reasons


def _check_mne_bids() -> Any:
    mne_bids = require("mne_bids", "bids", "export to BIDS")
    from mne_bids import config

    if "emg" not in getattr(config, "ALLOWED_DATATYPES", ()):
        raise SessionFileError(
            f"mne-bids {mne_bids.__version__} cannot write EMG (BIDS EMG support came in "
            f"mne-bids {MIN_MNE_BIDS}); nothing was written: pip install 'mne-bids>={MIN_MNE_BIDS}'"
        )
    require("edfio", "bids", "writing EMG as BDF for BIDS")
    return mne_bids


def export_bids(
    path: str | Path,
    root: str | Path,
    *,
    emg: str | None = None,
    markers: str | None = None,
    line_freq_hz: float = 50.0,
    overwrite: bool = False,
    **given: Any,
) -> tuple[list[Path], list[str]]:
    """Write the session's EMG into the BIDS dataset at ``root``; (files written, streams
    left out with the reason). ``given``: subject, session, task, run, acquisition."""
    mne_bids = _check_mne_bids()
    source = Path(path)
    recording = load_recording(source)
    require_samples(recording)
    info = _session_info(source)
    labels = bids_labels(source, info, given)
    raw = emg_to_raw(recording, emg=emg, markers=markers)
    raw.info["line_freq"] = line_freq_hz
    emg_name = next(
        (s.name for s in recording.streams if s.name == emg or (emg is None and s.type == "EMG")),
        "",
    )
    bids_path = mne_bids.BIDSPath(root=str(root), datatype="emg", **labels)
    before = {p for p in Path(root).rglob("*") if p.is_file()} if Path(root).exists() else set()
    try:
        written = mne_bids.write_raw_bids(
            raw, bids_path, format="BDF", allow_preload=True, emg_placement="Other",
            overwrite=overwrite, verbose="error",
        )  # fmt: skip
    except (ValueError, FileExistsError) as exc:  # labels, an existing run
        if isinstance(exc, FileExistsError) or "overwrite" in str(exc):
            raise SessionFileError(
                f"BIDS export to {root}: {bids_path.basename} exists already; give another "
                "run (eifer export --run N) or replace it (--overwrite)"
            ) from None
        raise SessionFileError(f"BIDS export to {root}: {exc}") from None
    scheme = info.get("electrode_scheme") or "fridlund"
    sidecar = written.copy().update(suffix="emg", extension=".json")
    mne_bids.update_sidecar_json(
        sidecar, {"EMGPlacementSchemeDescription": _scheme_description(scheme), "EMGReference": "bipolar"
                  if _bipolar(scheme) else "n/a"},
    )  # fmt: skip
    after = sorted(p for p in Path(root).rglob("*") if p.is_file())
    return [p for p in after if p not in before or p == written.fpath], left_out(
        recording, emg_name
    )


def _scheme(name: str) -> Any | None:
    try:
        return load_scheme(name)
    except Exception:  # a scheme file that is gone: the name is still worth writing
        return None


def _scheme_description(name: str) -> str:
    scheme = _scheme(name)
    description = getattr(scheme, "description", "") if scheme is not None else ""
    return f"{name}: {description}" if description else name


def _bipolar(name: str) -> bool:
    scheme = _scheme(name)
    return getattr(scheme, "montage", "") == "bipolar"
