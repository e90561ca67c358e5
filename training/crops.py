"""The pipeline's 224x224 face crop of every frame of a video file (for phase 1, the encoders)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from eifer_models.face_detection.crop import CropSpec
from streaming.errors import SessionFileError
from training.errors import DatasetError

__all__ = ["face_crops"]


def face_crops(
    video_file: Path,
    frame_index: np.ndarray,
    spec: CropSpec,
    progress: Callable[[int], None] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """``(crops (n, size, size, 3) uint8, face found (n,))`` for the frames ``frame_index`` of
    ``video_file``, in order, through the cropper the pipeline runs for ``spec`` (detection,
    smoothed or steady box, last box kept when detection fails); a video shorter than the index
    is a DatasetError."""
    from eifer_models.face_crop import FaceCropper
    from streaming.recording.video_file import VideoReader

    size = spec.size
    cropper = FaceCropper.from_spec(spec)
    crops = np.zeros((len(frame_index), size, size, 3), dtype=np.uint8)
    found = np.zeros(len(frame_index), dtype=bool)
    expected = int(frame_index.max()) + 1 if len(frame_index) else 0
    try:
        with VideoReader(video_file, expected_frames=expected) as reader:
            for row, index in enumerate(frame_index):
                result = cropper.process(reader.read(int(index)))
                if result.crop is not None:
                    crops[row], found[row] = result.crop, True
                if progress is not None:
                    progress(1)
    except SessionFileError as exc:
        raise DatasetError(str(exc)) from None
    return crops, found
