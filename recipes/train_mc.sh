#!/usr/bin/env bash
# Retrain the shipped multi-channel model (mc-small) and install it into the package.
# Needs ../shared/eeg and the shipped dac-small (its per-channel parts are the starting point).
#   bash recipes/train_mc.sh [RUN_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
run=${1:-runs/mc_small}
eegcodec train recipes/dac_mc_small.yaml --out "$run"
cp "$run/best.pth" eegcodec/models/mc-small.pth
echo "installed $run/best.pth as eegcodec/models/mc-small.pth"
# its prior over the codes (entropy-coded tokens), on the same training runs; the one it replaces is
# kept as mc-small.prior.<sha12>.npz, so files written under it still decode
eeg=../shared/eeg
eegcodec train-prior --model mc-small --steps 6000 --force --train "$eeg"/eegbci_S001/S001R0[3-9].edf \
  "$eeg"/eegbci_S001/S001R1[0-4].edf "$eeg"/eegmat/Subject0[0-9]_[12].edf "$eeg"/eeglab_sample/eeglab_data.set
