#!/usr/bin/env bash
# The encoders' comparison at the paper's scale, prepared for a lent GPU (issues 12, 23; not yet
# run: no GPU has been lent to this work). One command, about 10 minutes on one H200 by estimate:
#
#   On this machine, once:   bash benchmarks/gpu_wheels.sh              (wheels the GPU image lacks)
#   On the GPU machine:      bash benchmarks/gpu_train_encoders.sh      (device tool: carry [".whl"])
#
# The four-way comparison of benchmarks/encoders_comparison.py: (a) untrained, (b) supervised on
# occlusion-free 224 px crops, (d) supervised with the truth under electrodes (the upper bound),
# (c) phase 1 from (b) (configs/training/phase1.toml: 10/5/5 epochs, 10 % of the frames, batch
# 1). ENCODERS_CONFIG picks (a)/(b)/(d)'s recipe: encoders.toml (default; SMIRK's MobileNetV3:
# give SMIRK_em1.pt with EXTRA_SET='init_checkpoint="..."', from random weights it stalls,
# README) or encoders_cpu.toml with EXTRA_SET='data.crop_size=224' (the compact encoder).
# 600 (encoders.toml; 2,400 with encoders_cpu.toml) + 30 participants x 12 frames; face pairs
# rendered on all CPU cores first (render_workers = 0). Writes $OUT/encoders_comparison_gpu.json
# (+ .md table, .png plot), the runs (logs, samples, checkpoints: `eifer train ... --resume`
# continues one cut short by the lease), and $OUT/bundle: (c)'s encoders with seeded MLPs (phase 2
# on top: README, "Encoders"). Then benchmarks/phase1_generators.py at 224 px with the paper's
# generator ($OUT/phase1_generators_gpu.*): do its generators draw expression at all?
# EPOCHS_SCALE=0.2 bash ... runs a fifth of every epoch count (a first try in a short lease);
# DEVICE=cpu EPOCHS_SCALE=0.01 EXTRA_SET='data.frames_per_participant=1' checks the script here.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-artifacts/gpu_train_encoders}
mkdir -p "$OUT"
PY=${PYTHON:-python3}
export PYTHONUNBUFFERED=1 PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
if compgen -G ".whl/*.whl" >/dev/null; then
  "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/*.whl && export PYTHONPATH="$PYTHONPATH:/tmp/site"
fi
SCALE=${EPOCHS_SCALE:-1}
scaled() { "$PY" -c "import sys; print(max(1, round(float(sys.argv[1]) * $SCALE)))" "$1"; }
E=$(scaled 16)
S="[$(scaled 10), $(scaled 5), $(scaled 5)]"

nvidia-smi --query-gpu=name,memory.total --format=csv | tee "$OUT/gpu.txt"
"$PY" -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())" \
  | tee -a "$OUT/gpu.txt"
start=$(date +%s)
timeout "${LIMIT_S:-3000}" "$PY" -m benchmarks.encoders_comparison \
  --encoders-config "${ENCODERS_CONFIG:-encoders.toml}" --phase1-config phase1.toml \
  --out "$OUT/runs" --results "$OUT/encoders_comparison_gpu.json" --bundle "$OUT/bundle" \
  --set "device=\"${DEVICE:-cuda}\"" "data.cache_dir=\"$OUT/face_pairs\"" \
  'data.render_workers=0' ${EXTRA_SET:-} \
  --set-encoders "epochs=$E" \
  --set-phase1 "stage_epochs=$S" 'samples_per_epoch=2' \
  2>&1 | tee "$OUT/comparison.log" | grep -v '%|' 
rc=${PIPESTATUS[0]}
echo "comparison rc=$rc, $(( $(date +%s) - start )) s" | tee "$OUT/summary.txt"
# Do the paper-sized generators learn to draw expression at 224 px? (benchmarks/phase1_generators.py:
# self-reconstruction from (b)'s parameters, read back by (b) and by (d); on the CPU recipe they
# stayed near 0, which is why (c) could not learn there)
B_RUN=$(ls -d "$OUT"/runs/*-b-free 2>/dev/null | tail -n 1)
D_RUN=$(ls -d "$OUT"/runs/*-d-occluded-truth 2>/dev/null | tail -n 1)
if [ -f "$B_RUN/encoders.pt" ] && [ -f "$D_RUN/encoders.pt" ]; then
  timeout "${PROBE_LIMIT_S:-900}" "$PY" -m benchmarks.phase1_generators \
    --encoders "$B_RUN" --reader "$D_RUN" --config configs/training/phase1.toml \
    --set "data.cache_dir=\"$OUT/face_pairs\"" 'data.render_workers=0' ${EXTRA_SET:-} \
    --steps "${PROBE_STEPS:-3000}" --batch 16 --pixels 0.05 --threads 0 \
    --device "${DEVICE:-cuda}" --tag gpu --results "$OUT" 2>&1 | tee "$OUT/phase1_generators.log" \
    | grep -v '%|'
  echo "generator probe rc=${PIPESTATUS[0]}" | tee -a "$OUT/summary.txt"
fi
rm -rf "$OUT/face_pairs"  # re-rendered in a minute; not worth bringing back
exit "$rc"
