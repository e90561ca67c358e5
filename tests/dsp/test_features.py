"""Feature definitions: named, declared, serialisable, with their own delay."""

from __future__ import annotations

import numpy as np
import pytest

from streaming.config import ConfigError
from streaming.pipeline.features import (
    DEFAULT_FEATURE,
    FeatureDefinition,
    NotchStage,
    build_chain,
    feature_names,
    get_feature,
)

FS = 4096.0


def test_shipped_definitions_are_low_latency_default_and_mmm() -> None:
    assert {"low_latency", "mmm", "biofeedback"} <= set(feature_names())
    assert DEFAULT_FEATURE == "low_latency"
    for name in feature_names():
        defn = get_feature(name)
        assert defn.name == name and defn.source and defn.description and defn.rate_hz == FS


def test_low_latency_delay_over_the_envelope_band_is_48_ms_and_39_ms_at_dc() -> None:
    defn = get_feature("low_latency")
    assert defn.delay_s() * 1e3 == pytest.approx(47.9, abs=0.5)
    assert build_chain(defn, 1).dc_delay_s * 1e3 == pytest.approx(39.4, abs=0.5)
    kinds = [s.kind for s in defn.stages]
    assert kinds == ["butter_bandpass", "notch", "rectify", "butter_lowpass"]


def test_biofeedback_halves_low_latency_delay_measured_the_same_way() -> None:
    # issue 20, item 2: the same stages as low_latency, the smoother at 15 Hz instead of 6 Hz
    fast, default = get_feature("biofeedback"), get_feature("low_latency")
    assert [s.kind for s in fast.stages] == [s.kind for s in default.stages]
    assert fast.delay_s() == build_chain(fast, 22).band_delay_s  # the delay over the band
    assert fast.delay_s() * 1e3 == pytest.approx(22.5, abs=0.2)
    assert fast.delay_s() <= 0.5 * default.delay_s()
    assert build_chain(fast, 1).dc_delay_s * 1e3 == pytest.approx(16.9, abs=0.2)


def test_mmm_delay_is_fir_half_length_plus_rms_half_window() -> None:
    defn = get_feature("mmm")
    chain = build_chain(defn, 22)
    assert chain.delays_s["2:fir"] == 64 / FS
    assert chain.delays_s["3:sliding_rms"] == pytest.approx(1023.5 / FS)
    assert defn.delay_s() == pytest.approx((64 + 1023.5) / FS, abs=0.005)
    notch = next(s for s in defn.stages if isinstance(s, NotchStage))
    assert (notch.freq_hz, notch.q, notch.max_hz) == (50.0, 2.0, None)


def test_unknown_name_lists_the_known_definitions() -> None:
    with pytest.raises(
        ConfigError, match=r"unknown EMG feature definition 'rms'.*low_latency.*mmm"
    ):
        get_feature("rms")
    with pytest.raises(ConfigError, match="unknown EMG feature"):
        build_chain("nope", 2)


def test_definition_round_trips_through_a_dict_and_rebuilds_the_same_chain() -> None:
    for name in feature_names():
        defn = get_feature(name)
        data = defn.to_dict()
        assert isinstance(data["stages"][0], dict)
        again = FeatureDefinition.from_dict(data)
        assert again == defn
        x = np.random.default_rng(0).standard_normal((3000, 2)) * 30
        np.testing.assert_array_equal(
            build_chain(again, 2).process(x), build_chain(defn, 2).process(x)
        )


def test_bad_definition_dict_names_the_key_and_value() -> None:
    data = get_feature("low_latency").to_dict()
    data["stages"][0]["low_hz"] = -5
    with pytest.raises(ConfigError, match=r"stages\.0\.butter_bandpass\.low_hz.*-5"):
        FeatureDefinition.from_dict(data, "bundle manifest")
    data = get_feature("low_latency").to_dict()
    data["stages"].append({"kind": "wavelet"})
    with pytest.raises(ConfigError, match=r"(?s)bundle manifest.*stages\.4: Input tag 'wavelet'"):
        FeatureDefinition.from_dict(data, "bundle manifest")
    data = get_feature("low_latency").to_dict() | {"colour": "red"}
    with pytest.raises(ConfigError, match="colour"):
        FeatureDefinition.from_dict(data)


def test_mains_frequency_can_be_moved_to_60_hz() -> None:
    defn = get_feature("low_latency").with_mains_hz(60)
    chain = build_chain(defn, 1)
    t = np.arange(int(3 * FS)) / FS
    y = chain.stages[1].process(20 * np.sin(2 * np.pi * 180 * t)[:, None])
    assert np.max(np.abs(y[int(2 * FS) :])) < 0.2
    assert chain.stages[1].sos.shape[0] == 7  # 60 .. 420 Hz


def test_definition_loads_from_a_toml_path_with_overrides(tmp_path) -> None:
    path = tmp_path / "slow.toml"
    path.write_text(
        'name = "slow"\ndescription = "test"\nsource = "test"\n'
        '[[stages]]\nkind = "rectify"\n[[stages]]\nkind = "butter_lowpass"\ncutoff_hz = 3.0\n'
    )
    defn = get_feature(path, overrides=("rate_hz=2048.0",))
    assert (defn.name, defn.rate_hz, defn.stages[1].cutoff_hz) == ("slow", 2048.0, 3.0)
    chain = build_chain(defn, 1)
    assert chain.dc_delay_s * 1e3 == pytest.approx(75.0, abs=0.1)  # N=2 3 Hz at DC
    assert defn.delay_s() == chain.band_delay_s > chain.dc_delay_s  # delay rises in-band
    bad = tmp_path / "bad.toml"
    bad.write_text('name = "bad"\ndescription = "x"\nsource = "x"\nstages = []\n')
    with pytest.raises(ConfigError, match=r"(?s)bad\.toml.*stages"):
        get_feature(bad)


def test_chain_built_at_another_rate_keeps_durations() -> None:
    chain = build_chain("mmm", 1, rate_hz=2048.0)
    assert chain.stages[2].taps.size == 65  # 129 taps at 4096 Hz -> 64.5 -> odd 65 at 2048 Hz
    assert chain.stages[3].window == 1024  # 2048 samples = 0.5 s
    assert chain.group_delay_s == pytest.approx(get_feature("mmm").delay_s(), abs=0.005)
    with pytest.raises(ConfigError, match=r"'mmm' at 1000\.0 Hz.*Nyquist"):
        build_chain("mmm", 1, rate_hz=1000.0)  # its 500 Hz corner needs more than 1 kHz


def test_a_bessel_smoother_is_declared_like_the_others_and_delays_its_band_alike() -> None:
    # the frontier's Bessel candidates (benchmarks.envelope_frontier): a declared stage kind
    defn = get_feature("low_latency")
    data = defn.to_dict()
    data["name"] = "bessel"
    data["stages"][-1] = {"kind": "bessel_lowpass", "cutoff_hz": 10.0, "order": 2}
    bessel = FeatureDefinition.from_dict(data)
    chain = build_chain(bessel, 2)
    assert chain.stages[-1].name == "envelope_lowpass"
    f = np.linspace(0.0, 5.0, 11)
    curve_bessel = chain.stages[-1].group_delay_curve_s(f)
    curve_butter = build_chain(defn, 2).stages[-1].group_delay_curve_s(f)
    spread = np.ptp(curve_bessel) / curve_bessel[0]
    assert spread < 0.05 < np.ptp(curve_butter) / curve_butter[0]  # flat delay over 0-5 Hz
    with pytest.raises(ConfigError, match="norm"):
        FeatureDefinition.from_dict(
            {
                **bessel.to_dict(),
                "stages": [{"kind": "bessel_lowpass", "cutoff_hz": 10, "norm": "x"}],
            }
        )
