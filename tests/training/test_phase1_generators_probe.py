"""``benchmarks.phase1_generators``: the generators' self-reconstruction probe runs from the
command line on a tiny rig and writes its curve (every read-back a Pearson r or None) and its
picture of held-out faces."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from training.encoder_config import EncodersConfig, FaceDataConfig
from training.encoders import run_encoders

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow  # seconds alone; a minute on a loaded 2-core machine
@pytest.mark.timeout(900)
def test_the_probe_writes_a_curve_of_read_back_r_and_a_picture(tmp_path: Path) -> None:
    data = FaceDataConfig(
        train_participants=[1, 2], heldout_participants=[3], frames_per_participant=2,
        crop_size=32, cache_dir=str(tmp_path / "cache"), render_workers=1,
    )  # fmt: skip
    config = EncodersConfig(data=data, output=str(tmp_path), run_name="enc", untrained=True,
                            device="cpu", threads=1)  # fmt: skip
    encoders = run_encoders(config, progress=False)
    overrides = [f"data.{k}={json.dumps(v)}" for k, v in data.model_dump().items() if v is not None]
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.phase1_generators", "--encoders", str(encoders),
         "--reader", str(encoders), "--set", *overrides, "--steps", "2", "--eval-every", "1",
         "--batch", "2", "--features", "4", "--blocks", "1", "--tag", "t",
         "--results", str(tmp_path / "out")],
        cwd=REPO, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads((tmp_path / "out" / "phase1_generators_t.json").read_text())
    assert [point["step"] for point in result["curve"]] == [0, 1, 2]
    assert result["settings"]["features"] == 4 and result["settings"]["crop_size"] == 32
    for point in result["curve"]:
        for name in ("G_n read by E_n (true render)", "G_s read by the reader (d) (true render)",
                     "G_n from free pixels read by E_n (true render)"):  # fmt: skip
            assert point[name] is None or -1.0 <= point[name] <= 1.0, (name, point)
    assert result["curve"][0]["l1"] is None and result["curve"][-1]["l1"] > 0
    assert (tmp_path / "out" / "phase1_generators_t.png").stat().st_size > 0
