"""GraphInference and FramePredictor: typed per-frame predictions; missing/bad inputs give NaN and a
reason, never a crash; Exp2EMG's output comes back in the stream's channel order."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from eifer_models.inference import GraphInference
from streaming.pipeline.predictions import FramePredictions


@pytest.fixture(scope="module")
def stage(demo_bundle_factory):
    return GraphInference(demo_bundle_factory(), "onnxruntime", threads=1)


@pytest.fixture
def crop():
    from skimage import data, transform

    face = data.astronaut()[0:220, 140:360]  # a real photograph of a face
    return (transform.resize(face, (224, 224), anti_aliasing=True) * 255).astype(np.uint8)


def test_frame_gives_every_prediction_with_latency(stage, crop):
    env = np.linspace(0.0, 1.0, 22, dtype=np.float32)
    out = stage.process(crop, env)
    assert out.phi_video.shape == (55,) and out.pose.shape == (6,)
    assert out.emg_from_video.shape == (22,) and out.phi_emg.shape == (55,)
    assert isinstance(out, FramePredictions)
    assert all(
        np.isfinite(getattr(out, k)).all()
        for k in ("phi_video", "pose", "emg_from_video", "phi_emg")
    )
    assert out.emg_from_video.min() >= 0 and np.abs(out.phi_emg).max() <= 1
    assert not out.video_missing and not out.emg_missing and out.errors == ()
    assert set(out.latency_ms) == {"encoders", "exp2emg", "emg2exp", "total"}
    assert out.latency_ms["total"] >= out.latency_ms["encoders"] > 0
    assert out.backend == "onnxruntime"


def test_predictions_equal_the_torch_models(stage, crop):
    out = stage.process(crop, np.full(22, 0.3, dtype=np.float32))
    image = torch.from_numpy(crop.astype(np.float32) / 255).permute(2, 0, 1)[None]
    with torch.no_grad():
        pose, _, phi = stage.bundle.build_module("encoders")(image)
        emg = stage.bundle.build_module("exp2emg")(phi)
        phi_emg = stage.bundle.build_module("emg2exp")(torch.full((1, 22), 0.3))
    assert np.abs(out.phi_video - phi[0].numpy()).max() < 1e-4
    assert np.abs(out.pose - pose[0].numpy()).max() < 1e-4
    assert np.abs(out.emg_from_video - emg[0].numpy()).max() < 1e-4
    assert np.abs(out.phi_emg - phi_emg[0].numpy()).max() < 1e-5


def test_uint8_hwc_and_float_chw_crops_agree(stage, crop):
    a = stage.process(crop, None).phi_video
    b = stage.process((crop.astype(np.float32) / 255).transpose(2, 0, 1), None).phi_video
    assert np.abs(a - b).max() < 1e-5


def test_missing_inputs_give_nan_and_flags(stage, crop):
    out = stage.process(None, None)
    assert out.video_missing and out.emg_missing and out.errors == ()
    assert np.isnan(out.phi_video).all() and np.isnan(out.emg_from_video).all()
    assert np.isnan(out.phi_emg).all()
    only_emg = stage.process(None, np.zeros(22))
    assert only_emg.video_missing and not only_emg.emg_missing
    only_video = stage.process(crop, None)
    assert not only_video.video_missing and only_video.emg_missing


def test_bad_inputs_are_reported_not_raised(stage):
    out = stage.process(np.zeros((100, 100, 3), np.uint8), np.zeros(21))
    assert out.video_missing and out.emg_missing
    assert any("face crop has shape (100, 100, 3)" in e for e in out.errors)
    assert any("EMG envelope has 21 channels" in e for e in out.errors)
    env = np.zeros(22)
    env[3] = np.nan
    nan_crop = np.full((224, 224, 3), np.nan, np.float32)
    out = stage.process(nan_crop, env)
    assert "EMG envelope not finite on ['F4']" in out.errors
    assert "face crop contains NaN/inf" in out.errors


def test_stream_channels_are_reordered_to_the_bundle_order(stage):
    from streaming.errors import StreamFormatError

    stream_labels = list(reversed(stage.emg_channels))
    index = stage.channel_index(stream_labels)
    envelope = np.arange(22, dtype=np.float32)  # value = position in the stream
    assert [stream_labels[i] for i in index] == stage.emg_channels
    assert envelope[index][0] == 21  # F1 is last in the stream
    with pytest.raises(StreamFormatError, match=r"lacks channels \['F22'\]"):
        stage.channel_index(stage.emg_channels[:21])


def test_predictions_are_frozen(stage, crop):
    import dataclasses

    out = stage.process(crop, None)
    with pytest.raises(dataclasses.FrozenInstanceError):
        out.phi_video = None  # type: ignore[misc]


def test_frame_predictor_returns_emg_from_video_in_the_stream_order(stage):
    """A stream with the bundle's channels in reverse order (plus one the bundle does not know):
    the envelope reaches EMG2Exp in the bundle's order, and Exp2EMG's output comes back in the
    stream's order, so it lines up with the ``muscle`` message's channels."""
    from skimage import data

    from eifer_models.face_crop import FaceCropper
    from eifer_models.live import FramePredictor

    predictor = FramePredictor(stage, FaceCropper(), feature=None)
    stream_labels = ["extra", *reversed(stage.emg_channels)]
    envelope_bundle = np.linspace(0.1, 0.9, 22, dtype=np.float32)
    envelope_stream = np.concatenate([[5.0], envelope_bundle[::-1]]).astype(np.float32)
    rgb = data.astronaut()
    out = predictor.process(rgb, envelope_stream, stream_labels)
    direct = stage.process(FaceCropper().process(rgb).crop, envelope_bundle)
    assert out.face_detected and out.face_box is not None and out.face_box.shape == (4,)
    np.testing.assert_allclose(out.phi_emg, direct.phi_emg, atol=1e-6)
    np.testing.assert_allclose(out.emg_from_video[1:], direct.emg_from_video[::-1], atol=1e-5)
    assert np.isnan(out.emg_from_video[0])  # a channel the bundle does not predict
    assert {"face_crop", "model_encoders", "model_emg2exp"} <= set(out.latency_ms)


def test_frame_predictor_reports_missing_channels_and_still_reads_the_face(stage):
    from skimage import data

    from eifer_models.face_crop import FaceCropper
    from eifer_models.live import FramePredictor

    predictor = FramePredictor(stage, FaceCropper(), feature=None)
    labels = stage.emg_channels[:21]
    out = predictor.process(data.astronaut(), np.zeros(21, np.float32), labels)
    assert any("lacks channels ['F22']" in e for e in out.errors)
    assert np.isnan(out.phi_emg).all() and np.isfinite(out.phi_video).all()
    assert out.emg_from_video.shape == (21,)


def test_the_video_branch_then_emg2exp_equals_the_whole_frame(stage):
    """The pipeline runs ``process_video`` while the EMG is awaited and ``process_emg`` after the
    join (issue 20): together they give what ``process`` gives; the video branch alone leaves
    ``phi_emg`` NaN and runs no EMG2Exp."""
    from skimage import data

    from eifer_models.face_crop import FaceCropper
    from eifer_models.live import FramePredictor

    predictor = FramePredictor(stage, FaceCropper(), feature=None)
    labels = list(stage.emg_channels)
    envelope = np.linspace(0.1, 0.9, 22, dtype=np.float32)
    rgb = data.astronaut()
    video = predictor.process_video(rgb, labels)
    assert np.isnan(video.phi_emg).all() and np.isfinite(video.phi_video).all()
    assert "model_emg2exp" not in video.latency_ms
    joined = predictor.process_emg(video, envelope, labels)
    whole = FramePredictor(stage, FaceCropper(), feature=None).process(rgb, envelope, labels)
    for key in ("phi_video", "pose", "emg_from_video", "phi_emg"):
        np.testing.assert_allclose(getattr(joined, key), getattr(whole, key), atol=1e-6)
    assert joined.face_detected == whole.face_detected and joined.errors == whole.errors == ()
    assert {"face_crop", "model_encoders", "model_emg2exp"} <= set(joined.latency_ms)
