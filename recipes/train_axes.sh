#!/usr/bin/env bash
# Models for the vocabulary-size and input-rate axes of `eegcodec bench rd`: recipes/cpu_small.yaml
# for 1500 steps each (one thread), changing only the codebook size or the rate EEG enters the codec.
#   bash recipes/train_axes.sh            # writes runs/axis_vocab{256,1024,4096}, runs/axis_rate{80,320}
set -euo pipefail
cd "$(dirname "$0")/.."
common=(--steps 1500 --set threads=1 --set val_every=500 --set ckpt_every=500)
for v in 256 1024 4096; do
  eegcodec train recipes/cpu_small.yaml --out runs/axis_vocab$v "${common[@]}" --set name=vocab$v --set model.codebook_size=$v
done
for r in 80 320; do
  eegcodec train recipes/cpu_small.yaml --out runs/axis_rate$r "${common[@]}" --set name=rate$r --set model.sample_rate=$r --set adapter.model_rate=$r
done
