#!/usr/bin/env bash
# Retrain the shipped per-channel model (dac-small) and install it into the package.
# Needs ../shared/eeg (see its README). Two stages, both from recipes/cpu_small.yaml:
#   1. from scratch, L1 + L2 waveform losses (5000 steps);
#   2. fine-tune with a small multi-scale log-STFT term (1500 steps), which brings the
#      spectral error from 10-14 dB down to 2-4 dB at a cost of a few PRD points.
#   bash recipes/train_dac_small.sh [RUN_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
run=${1:-runs/cpu_small}
eegcodec train recipes/cpu_small.yaml --out "$run"
eegcodec train recipes/cpu_small.yaml --out "${run}_ft" --set init="$run/best.pth" \
  --set loss.stft=0.05 --set steps=1500 --set optim.lr=0.0005 --set optim.warmup_steps=50
cp "${run}_ft/best.pth" eegcodec/models/dac-small.pth
echo "installed ${run}_ft/best.pth as eegcodec/models/dac-small.pth"
# its prior over the codes (entropy-coded tokens), on the same training runs, split into 32 groups of
# 32 (faster to code); the prior it replaces is kept as dac-small.prior.<sha12>.npz for older files
eeg=../shared/eeg
eegcodec train-prior --model dac-small --steps 6000 --split-groups 32 --force --train "$eeg"/eegbci_S001/S001R0[3-9].edf \
  "$eeg"/eegbci_S001/S001R1[0-4].edf "$eeg"/eegmat/Subject0[0-9]_[12].edf "$eeg"/eeglab_sample/eeglab_data.set
