#!/usr/bin/env bash
# Wheels that the GPU machine's image lacks, for its Python 3.12 (see ../.library/device/README.md
# and KINDS.md: it has torch, timm, onnxruntime, numpy, scipy, msgpack, pytest, but not pydantic).
# Run here, in the repository root (.whl/ is git-ignored: name it in the device tool's carry);
# gpu_check.sh installs them from .whl/ on the GPU machine.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p .whl
for spec in pydantic pydantic-core annotated-types typing-inspection typing-extensions; do
  python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
    --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 -d .whl "$spec"
done
ls -la .whl
