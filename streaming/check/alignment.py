"""EMG-to-frame alignment error of ``muscle`` messages against the EMG truth.

A message for a frame captured at ``t`` read the envelope at ``t + o`` (``o`` =
``emg_read_offset_ms``: the chain's delay ``D`` when aligning, 0 in the ``latest`` mode) and
says which EMG sample that was (``emg_sample_index``, fractional). The error is the true time of
that sample minus ``t + o``: 0 when the pipeline read exactly where it meant to. After delay
compensation the envelope then describes the moment ``t + o - D``: the frame's own moment when
aligning, ``D`` earlier in the ``latest`` mode (the lag the message and ``status`` state).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

import numpy as np

from streaming.bus.pubsub import Message
from streaming.check.truth import sample_time

__all__ = ["alignment_errors_ms"]


def alignment_errors_ms(
    messages: Sequence[Message], truth_t: np.ndarray, truth_k: np.ndarray
) -> np.ndarray:
    """Per message with EMG, true time of its sample minus its intended read time (ms);
    NaN where the truth does not cover it."""
    with_emg = [m for m in messages if m.topic == "muscle" and not m.fields.get("emg_missing")]
    if not with_emg:
        return np.empty(0)
    k = np.array([float(m.fields["emg_sample_index"]) for m in with_emg])
    t_read = np.array(  # the pipeline stamps every muscle message with its frame's time
        [cast(float, m.t) + 1e-3 * float(m.fields.get("emg_read_offset_ms", 0.0)) for m in with_emg]
    )
    return 1e3 * (sample_time(k, t_read, truth_t, truth_k) - t_read)
