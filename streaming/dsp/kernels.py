"""Compiled per-chunk kernel: a run of IIR sections and rectifications in one pass (numba).

Contract of :func:`sos_run` (``streaming.dsp.stages.Chain`` uses it for every run of
:class:`~streaming.dsp.stages.SosFilter` and :class:`~streaming.dsp.stages.Rectify` stages once
their state is initialised):

- Input ``x`` is a C-contiguous ``(n, C)`` float32 or float64 chunk; ``y`` receives the float64
  output. ``sos`` stacks the sections of all the run's filters ``(S, 6)`` (``a0 == 1``, as
  ``scipy.signal.sosfilt`` requires), ``zi`` their states ``(S, 2, C)`` in scipy's layout for
  ``axis=0`` and is updated in place; ``rect[s]`` applies ``abs`` before section ``s``
  (``rect[S]``: after the last).
- Each section is the transposed direct form II of ``scipy.signal.sosfilt`` (scipy/signal/
  _sosfilt.pyx) with the same operations in the same order, compiled without fast-math, so the
  output is bit-for-bit scipy's (tests/dsp/test_fused.py).
- A chunk with a non-finite sample returns their count and leaves ``zi`` and ``hold``
  untouched (``y`` undefined), so the caller can fill the gaps as the per-stage path does and call again. Else it
  returns 0 and sets ``hold`` to the chunk's last row (the value a later gap is filled with).
- Each section runs over the whole chunk, then the next, while the chunk stays in the L1
  cache; channels are the inner loop (contiguous in ``(n, C)``), so the compiler vectorises
  across them. One Python call per run instead of one ``sosfilt`` per stage.

numba is imported here only: :func:`load` returns the compiled kernel, or None where numba is
missing (the chain then keeps the per-stage scipy path, same output, slower). The first chunk
after a chain's first one compiles it on a machine's first use (about 0.7 s for float64 input,
0.4 s more for float32; measured on the 2-core CI-class machine), then numba's on-disk cache
loads it in about 0.1 s: a one-off pause of the EMG acquisition at start, caught up from the
inlet's buffer.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

__all__ = ["load", "sos_run_py"]


def sos_run_py(
    x: np.ndarray,
    sos: np.ndarray,
    zi: np.ndarray,
    rect: np.ndarray,
    y: np.ndarray,
    hold: np.ndarray,
) -> int:
    """The kernel's source (runs as plain Python too, slowly): see the module docstring."""
    n, C = x.shape
    S = sos.shape[0]
    nan_if_bad = 0.0
    for i in range(n):  # copy, and v - v is NaN exactly for NaN and +-Inf (no branch: vectorised)
        for c in range(C):
            v = np.float64(x[i, c])
            nan_if_bad += v - v
            y[i, c] = v
    if nan_if_bad != nan_if_bad:
        bad = 0
        for i in range(n):
            for c in range(C):
                if not np.isfinite(x[i, c]):
                    bad += 1
        return bad
    if n:
        for c in range(C):
            hold[c] = x[n - 1, c]
    for s in range(S):  # a section over the whole chunk, then the next (3x faster than
        b0 = sos[s, 0]  # sample-outer: the channel loop's set-up is paid once per section)
        b1 = sos[s, 1]
        b2 = sos[s, 2]
        a1 = sos[s, 4]
        a2 = sos[s, 5]
        z0 = zi[s, 0]
        z1 = zi[s, 1]
        r = rect[s]
        for i in range(n):
            yi = y[i]
            if r:
                for c in range(C):
                    yi[c] = abs(yi[c])
            for c in range(C):  # scipy _sosfilt.pyx, same operations in the same order
                v = yi[c]
                out = b0 * v + z0[c]
                z0[c] = b1 * v - a1 * out + z1[c]
                z1[c] = b2 * v - a2 * out
                yi[c] = out
    if rect[S]:
        for i in range(n):
            for c in range(C):
                y[i, c] = abs(y[i, c])
    return 0


_KERNEL: Callable[..., int] | None = None
_TRIED = False


def load() -> Callable[..., int] | None:
    """The compiled :func:`sos_run_py` (cached on disk by numba), or None without numba."""
    global _KERNEL, _TRIED
    if not _TRIED:
        _TRIED = True
        try:
            import numba
        except ImportError:  # pragma: no cover - numba is a dependency; the fallback stays
            return None
        jit: Any = numba.njit(nogil=True, cache=True)
        _KERNEL = jit(sos_run_py)
    return _KERNEL
