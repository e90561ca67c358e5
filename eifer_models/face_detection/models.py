"""MediaPipe's face models, taken from the ``mediapipe==0.10.14`` wheel through the package index.

The wheel ships the TFLite files of MediaPipe Face Detection (BlazeFace, short and full range),
Face Mesh (468 points) and Iris (eye contour + 5 iris points per eye). Only the files are used: the
wheel is downloaded with ``pip download --no-deps`` and the four files are extracted and checked against
their SHA-256; ``mediapipe`` itself is never installed or imported (it pulls jax, protobuf<5 and an
OpenCV 5 ``cv2`` that clashes with ``opencv-python-headless<5``).

Where they go: ``$EIFER_MODEL_DIR`` if set, else ``<venv>/share/eifer/mediapipe-0.10.14``.
``python -m eifer_models.face_detection.models`` fetches them (``make`` does it once per venv).
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from streaming.errors import EiferError

__all__ = [
    "MEDIAPIPE_VERSION",
    "MODEL_FILES",
    "ModelFilesError",
    "fetch_models",
    "model_dir",
    "model_path",
    "models_available",
]

MEDIAPIPE_VERSION = "0.10.14"
# name -> (path inside the wheel, sha256 of the file in mediapipe 0.10.14)
MODEL_FILES: dict[str, tuple[str, str]] = {
    "face_detection_short_range": (
        "mediapipe/modules/face_detection/face_detection_short_range.tflite",
        "bbff11cebd1eb27a1e004cae0b0e63ec8c551cbf34a4451148b4908b8db3eca8",
    ),
    "face_detection_full_range": (
        "mediapipe/modules/face_detection/face_detection_full_range_sparse.tflite",
        "2c3728e6da56f21e21a320433396fb06d40d9088f2247c05e5635a688d45dfe1",
    ),
    "face_landmark": (
        "mediapipe/modules/face_landmark/face_landmark.tflite",
        "1055cb9d4a9ca8b8c688902a3a5194311138ba256bcc94e336d8373a5f30c814",
    ),
    "iris_landmark": (
        "mediapipe/modules/iris_landmark/iris_landmark.tflite",
        "d1744d2a09c25f501d39eba4faff47e53ecca8852c5ce19bce8eeac39357521f",
    ),
}
WHEEL_PLATFORM, WHEEL_PYTHON = "manylinux2014_x86_64", "3.11"
FETCH_COMMAND = "python -m eifer_models.face_detection.models"


class ModelFilesError(EiferError):
    """A MediaPipe model file is missing or corrupt, or the wheel could not be fetched."""


def model_dir() -> Path:
    """Where the model files live (see the module docstring)."""
    env = os.environ.get("EIFER_MODEL_DIR")
    if env:
        return Path(env)
    return Path(sys.prefix) / "share" / "eifer" / f"mediapipe-{MEDIAPIPE_VERSION}"


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def model_path(name: str) -> Path:
    """The verified path of one model file; :class:`ModelFilesError` names the fix if absent."""
    if name not in MODEL_FILES:
        raise ModelFilesError(f"unknown face model {name!r} (known: {', '.join(MODEL_FILES)})")
    path = model_dir() / Path(MODEL_FILES[name][0]).name
    if not path.is_file():
        raise ModelFilesError(f"face model {path} missing: fetch it with `{FETCH_COMMAND}`")
    if _sha256(path) != MODEL_FILES[name][1]:
        raise ModelFilesError(
            f"face model {path} fails its sha256 check: delete it and run `{FETCH_COMMAND}`"
        )
    return path


def models_available() -> bool:
    """All the files present and verified."""
    try:
        for name in MODEL_FILES:
            model_path(name)
    except ModelFilesError:
        return False
    return True


def extract_from_wheel(wheel: Path, dest: Path) -> list[Path]:
    """Copy the model files out of a mediapipe wheel into ``dest``, verifying each checksum."""
    dest.mkdir(parents=True, exist_ok=True)
    written = []
    with zipfile.ZipFile(wheel) as archive:
        for member, digest in MODEL_FILES.values():
            data = archive.read(member)
            if hashlib.sha256(data).hexdigest() != digest:
                raise ModelFilesError(f"{wheel}: {member} is not the file of mediapipe 0.10.14")
            target = dest / Path(member).name
            tmp = target.with_suffix(".part")
            tmp.write_bytes(data)
            tmp.replace(target)
            written.append(target)
    return written


def fetch_models(dest: Path | None = None, *, quiet: bool = True) -> Path:
    """Download the mediapipe wheel (no dependencies) with pip and extract the model files.

    Uses the configured package index only (pip's own settings). Returns the model folder."""
    dest = dest or model_dir()
    if dest == model_dir() and models_available():
        return dest
    with tempfile.TemporaryDirectory(prefix="eifer-mediapipe-") as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:"]
        # one fixed wheel (the model files are the same in all of them): works from any
        # Python version or CPU, and its files always match the checksums above
        cmd += ["--platform", WHEEL_PLATFORM, "--python-version", WHEEL_PYTHON]
        cmd += ["-d", tmp, f"mediapipe=={MEDIAPIPE_VERSION}"]
        if quiet:
            cmd.append("-q")
        done = subprocess.run(cmd, capture_output=True, text=True, check=False)
        wheels = sorted(Path(tmp).glob("mediapipe-*.whl"))
        if done.returncode != 0 or not wheels:
            tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no wheel"]
            raise ModelFilesError(f"pip download mediapipe=={MEDIAPIPE_VERSION} failed: {tail[0]}")
        extract_from_wheel(wheels[0], dest)
    return dest


def main() -> int:
    try:
        folder = fetch_models(quiet=False)
    except EiferError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"MediaPipe face models in {folder}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
