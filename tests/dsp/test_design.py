"""Filter designs give the responses the research note computed (emg_processing.md 3.2, 5.5)."""

from __future__ import annotations

import numpy as np
import pytest

from streaming.dsp import design

FS = 4096.0


def db(sos: np.ndarray, f: float) -> float:
    return float(20 * np.log10(design.sos_gain(sos, f, FS)[0]))


def test_bandpass_20_450_n2_band_edges_match_reference_numbers() -> None:
    sos = design.butter_bandpass(20, 450, 2, FS)
    assert db(sos, 20) == pytest.approx(-3.0, abs=0.1)
    assert db(sos, 450) == pytest.approx(-3.0, abs=0.1)
    assert db(sos, 10) == pytest.approx(-12.8, abs=0.2)
    assert db(sos, 5) == pytest.approx(-24.8, abs=0.2)
    assert db(sos, 1000) == pytest.approx(-17.9, abs=0.2)


def test_bandpass_group_delay_in_band_is_a_few_ms() -> None:
    sos = design.butter_bandpass(20, 450, 2, FS)
    assert design.sos_group_delay_s(sos, 30, FS) * 1e3 == pytest.approx(6.9, abs=0.2)
    assert design.sos_group_delay_s(sos, 100, FS) * 1e3 == pytest.approx(0.98, abs=0.05)


def test_envelope_lowpass_6hz_delay_at_dc_is_37_5_ms_and_minus_16_db_at_15_hz() -> None:
    sos = design.butter_lowpass(6, 2, FS)
    assert design.sos_group_delay_s(sos, 0.0, FS) * 1e3 == pytest.approx(37.5, abs=0.1)
    assert db(sos, 15) == pytest.approx(-16.0, abs=0.2)


def test_notch_cascade_places_harmonics_up_to_the_limit() -> None:
    assert design.notch_frequencies(50, FS, 450) == [50, 100, 150, 200, 250, 300, 350, 400, 450]
    assert design.notch_frequencies(60, FS, 450) == [60, 120, 180, 240, 300, 360, 420]
    assert design.notch_frequencies(50, FS, None) == [50]
    assert design.notch_cascade(50, 30, FS, 450).shape == (9, 6)


def test_notch_zero_is_exact_and_passband_loss_is_small() -> None:
    sos = design.notch_cascade(50, 30, FS, 450)
    for f in (50, 100, 150):
        assert db(sos, f) < -100
    assert db(sos, 50.1) == pytest.approx(-18.5, abs=0.5)
    assert db(sos, 75) > -0.05
    assert db(sos, 125) > -0.1


def test_fir_bandpass_is_odd_length_linear_phase() -> None:
    taps = design.fir_bandpass(10, 500, 129, FS)
    assert taps.shape == (129,)
    np.testing.assert_allclose(taps, taps[::-1])
    assert design.fir_group_delay_s(129, FS) == 64 / FS


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: design.butter_bandpass(450, 20, 2, FS), "below"),
        (lambda: design.butter_bandpass(20, 3000, 2, FS), "Nyquist"),
        (lambda: design.butter_lowpass(0, 2, FS), "Nyquist"),
        (lambda: design.fir_bandpass(10, 500, 128, FS), "odd"),
        (lambda: design.notch_cascade(50, 0, FS), "positive"),
    ],
)
def test_impossible_designs_are_rejected_with_the_parameter_named(call, match) -> None:
    with pytest.raises(ValueError, match=match):
        call()
