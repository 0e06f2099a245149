#!/usr/bin/env bash
# Retrain the shipped default model (dac-small) from recipes/cpu_small.yaml and
# install it into the package. Needs ../shared/eeg (see its README).
#   bash recipes/train_default.sh [RUN_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
run=${1:-runs/cpu_small}
eegcodec train recipes/cpu_small.yaml --out "$run"
cp "$run/best.pth" eegcodec/models/dac-small.pth
echo "installed $run/best.pth as eegcodec/models/dac-small.pth; update eegcodec/models/dac-small.md from $run/history.json"
