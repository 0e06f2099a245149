#!/usr/bin/env bash
# Training on an offline GPU machine, step 2: run ON the GPU machine, from the root of a copy of
# the repository that holds .whl/ and sprint/ from `bash recipes/gpu_sprint_prepare.sh`:
#   bash recipes/gpu_sprint.sh
# Installs the copied wheels, trains sprint/recipe.yaml for MINUTES (default 6; bf16 autocast on
# CUDA, learning rate decayed over the time) and leaves best.pth, model.pth, history.json and the
# TensorBoard log in $OUT/run, to be copied back. Evaluate and ship on CPU (docs/training.md).
# Also runs on CPU (the test does, with MINUTES tiny and SKIP_INSTALL=1).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${SKIP_INSTALL:-}" ]; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
    export PYTHONPATH=/tmp/site:$PWD
fi
py=${PYTHON:-python3}
out=${OUT:-runs/sprint}
sprint=${SPRINT:-sprint}
command -v nvidia-smi > /dev/null && nvidia-smi --query-gpu=name,memory.total --format=csv,noheader || true
$py -m eegcodec.cli train "$sprint/recipe.yaml" --out "$out/run" \
    --set max_minutes="${MINUTES:-6}" --set steps="${STEPS:-200000}" --set threads=0 ${SPRINT_SET:-}
