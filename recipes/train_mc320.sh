#!/usr/bin/env bash
# Retrain the shipped mc-320 (recipes/mc_unseen_320.yaml: DAC-MC at 320 Hz, whole subjects held out),
# install it as eegcodec/models/mc-320.pth (metadata name set to mc-320; the weights' SHA-256 is of
# the state dict, unchanged) and fit its prior on the recipe's training recordings.
#   bash recipes/train_mc320.sh [RUN_DIR]      (long on CPU: resume with eegcodec train ... --resume)
set -euo pipefail
cd "$(dirname "$0")/.."
run=${1:-runs/mc_unseen_320}
eegcodec train recipes/mc_unseen_320.yaml --out "$run"
python - "$run/best.pth" eegcodec/models/mc-320.pth <<'PY'
import sys, torch
blob = torch.load(sys.argv[1], map_location="cpu", weights_only=True)
blob["metadata"]["eegcodec"]["name"] = "mc-320"
torch.save(blob, sys.argv[2])
PY
echo "installed $run/best.pth as eegcodec/models/mc-320.pth"
eeg=../shared/eeg
eegcodec train-prior --model mc-320 --steps 6000 --force --train "$eeg"/eegbci_S001/*.edf \
  "$eeg"/eegbci_more/S002R*.edf "$eeg"/eegbci_more/S012R*.edf "$eeg"/eegbci_more/S032R*.edf \
  "$eeg"/eegmat/Subject0[0-9]_[12].edf "$eeg"/eegmat/Subject1[2-9]_[12].edf "$eeg"/eeglab_sample/eeglab_data.set
