#!/usr/bin/env bash
# Encoder B frozen vs fine-tuned, on the SEMI-SYNTHETIC set of recipes/align.sh.
#   bash recipes/align_finetune.sh [DATA_DIR] [RUNS_DIR] [REPORT_DIR]
# Starts from the frozen InfoNCE run of recipes/align.sh (RUNS_DIR/infonce_l1_r1, trained first when
# absent) and trains STEPS more steps from it, per mapper learning rate in LRS, twice: encoder B
# frozen (the control for the extra training) and with its last BLOCKS encoder modules + channel
# attention tuned (finetune_b). Writes REPORT_DIR/finetune.md: retrieval (test, control,
# block-permutation p) of every mapper, and the codec's PRD on real recordings of the held-out
# subjects before and after tuning (eegcodec eval at depths 6 and 12; the first LRS value's encoder).
# Needs ../shared/eeg. THREADS per job. About 13 min per tuned run and 8-10 min per its evaluation on 2 CPU cores.
set -euo pipefail
cd "$(dirname "$0")/.."
data=${1:-runs/align_data}
runs=${2:-runs/align}
report=${3:-benchmarks/align}
threads=${THREADS:-2}
steps=${STEPS:-300}
blocks=${BLOCKS:-2}
lrs=${LRS:-0.001 0.0003}   # the mapper's learning rate in the continued runs (encoder B: lr_scale x it)
[ -f "$data/manifest.csv" ] || eegcodec align make-synthetic --out "$data"
base="$runs/infonce_l1_r1"
common=(--data "$data" --set encoder_a=audio-dac-small --set threads="$threads")
[ -f "$base/best.pth" ] || eegcodec align train recipes/align_dac.yaml --out "$base" "${common[@]}" \
    --set steps=600 > /dev/null
out="$report/finetune"
mkdir -p "$out"
evals=("$out/infonce_l1_r1")
eegcodec align eval "$base" --data "$data" --out "$out/infonce_l1_r1" -q > /dev/null
for lr in $lrs; do
    for n in 0 "$blocks"; do
        name=$([ "$n" = 0 ] && echo frozen || echo "tuned_b$n")_lr$lr
        [ -f "$runs/$name/best.pth" ] || eegcodec align train recipes/align_dac.yaml --out "$runs/$name" \
            "${common[@]}" --set finetune_b.init="$base" --set finetune_b.blocks="$n" --set steps="$steps" \
            --set optim.lr="$lr" --set val_every=50 --set ckpt_every=50 > /dev/null
        [ -f "$out/$name/results.json" ] || eegcodec align eval "$runs/$name" --data "$data" --out "$out/$name" -q \
            > /dev/null
        evals+=("$out/$name")
    done
done
# the codec on real recordings of the subjects held out of the mapper's (and encoder B's) training
eeg=(../shared/eeg/eegmat/Subject10_1.edf ../shared/eeg/eegmat/Subject11_1.edf)
eegcodec eval "${eeg[@]}" --crop 60 --codebooks 6 12 -q --json "$out/codec_before.json" -f > /dev/null
eegcodec eval "${eeg[@]}" --crop 60 --codebooks 6 12 -q --model "$runs/tuned_b${blocks}_lr${lrs%% *}/best_encoder_b.pth" \
    --json "$out/codec_after.json" -f > /dev/null
eegcodec bench align-table "${evals[@]}" \
    --codec "$out/codec_before.json" "$out/codec_after.json" > "$report/finetune.md"
cat "$report/finetune.md"
