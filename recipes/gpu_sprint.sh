#!/usr/bin/env bash
# The GPU sprint: run ON a lent GPU machine, from the repository root, by the device tool:
#   run(command="bash recipes/gpu_sprint.sh", carry=[".whl", "sprint"], timeout_s=540)
# after `bash recipes/gpu_sprint_prepare.sh` here. Installs the carried wheels, trains
# sprint/recipe.yaml for MINUTES (default 6; bf16 autocast on CUDA, learning rate decayed over
# the time) and leaves best.pth, model.pth, history.json and the TensorBoard log in $OUT/run,
# which the tool brings back. Evaluate and ship on CPU (README, "GPU sprint").
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
