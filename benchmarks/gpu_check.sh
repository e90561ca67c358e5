#!/usr/bin/env bash
# The first run on a GPU, prepared (issue 9): every GPU test and GPU benchmark row in one command,
# in well under five minutes, so a session that is lent a GPU uses it at once.
#
#   On this machine, once:   bash benchmarks/gpu_wheels.sh        (wheels the GPU image lacks -> .whl/)
#   On the GPU machine:      bash benchmarks/gpu_check.sh          (device tool: carry [".whl"])
#
# What it runs, each step bounded by `timeout` and never stopping the next:
#   1. versions: nvidia-smi, python, torch + CUDA, onnxruntime, tensorrt (if it imports), timm;
#   2. pytest -m "gpu or tensorrt": CUDA-graph backend vs ONNX Runtime, TensorRT engine build,
#      cache and signature, the renderer on CUDA;
#   3. the timm parity test of the MobileNetV3 backbones (timm is on the GPU image);
#   4. benchmarks.inference_latency: ONNX Runtime CPU, torch eager, torch CUDA graphs, TensorRT.
# Results go to $OUT (the device tool's folder) or artifacts/gpu_check/.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-artifacts/gpu_check}
mkdir -p "$OUT"
PY=${PYTHON:-python3}
export PYTHONUNBUFFERED=1 PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"

if compgen -G ".whl/*.whl" >/dev/null; then
  "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/*.whl && export PYTHONPATH="$PYTHONPATH:/tmp/site"
fi

step() {  # step NAME SECONDS COMMAND...: run, log to $OUT/NAME.log, record the exit status
  local name=$1 limit=$2
  shift 2
  echo "== $name (limit ${limit}s)"
  timeout "$limit" "$@" >"$OUT/$name.log" 2>&1
  local rc=$?
  echo "$name rc=$rc" | tee -a "$OUT/summary.txt"
  tail -n 15 "$OUT/$name.log"
}

: >"$OUT/summary.txt"
step versions 60 bash -c "nvidia-smi; $PY - <<'PYEOF'
import importlib, platform
print('python', platform.python_version())
for name in ('torch', 'onnxruntime', 'tensorrt', 'timm', 'pydantic', 'numpy'):
    try:
        module = importlib.import_module(name)
        print(name, getattr(module, '__version__', '?'))
    except Exception as exc:
        print(name, 'not importable:', type(exc).__name__, exc)
import torch
print('cuda', torch.cuda.is_available(), torch.version.cuda,
      torch.cuda.get_device_name() if torch.cuda.is_available() else '')
PYEOF"
step gpu_tests 150 "$PY" -m pytest -p no:cacheprovider -o addopts= -q -rs --timeout=140 \
  -m "gpu or tensorrt" tests/models --junitxml "$OUT/gpu_tests.xml"
step timm_parity 60 "$PY" -m pytest -p no:cacheprovider -o addopts= -q -rs -s \
  tests/models/test_encoders_smirk.py -k timm
step inference_latency 150 "$PY" -m benchmarks.inference_latency --iterations 200 \
  --out "$OUT/inference_latency.json"
echo "results in $OUT:"
cat "$OUT/summary.txt"
