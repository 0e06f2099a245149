#!/usr/bin/env bash
# Encoder B end to end on the SEMI-SYNTHETIC set: data, audio encoder A, the mapper with
# every L_align x (lambda_align, lambda_rec) setting of the ablation, evaluation (test,
# control, chance), the ablation table and example WAVs decoded from EEG.
#   bash recipes/align.sh [DATA_DIR] [RUNS_DIR] [REPORT_DIR]
# Needs ../shared/eeg (background EEG). Steps of the audio codec and the mapper: AUDIO_STEPS,
# ALIGN_STEPS (defaults: the settings of benchmarks/align); THREADS per job.
set -euo pipefail
cd "$(dirname "$0")/.."
data=${1:-runs/align_data}
runs=${2:-runs/align}
report=${3:-benchmarks/align}
threads=${THREADS:-2}
[ -f "$data/manifest.csv" ] || eegcodec align make-synthetic --out "$data"
# encoder A is the shipped audio-dac-small; RETRAIN_AUDIO=1 retrains it with recipes/audio_dac_small.yaml
if [ -n "${RETRAIN_AUDIO:-}" ]; then
    eegcodec train recipes/audio_dac_small.yaml --out runs/audio_dac_small --set data.root="$data" \
        --set threads="$threads" --set steps="${AUDIO_STEPS:-1000}"
fi
enc_a=${RETRAIN_AUDIO:+runs/audio_dac_small/best.pth}
mkdir -p "$report"
evals=()
for setting in infonce:1:0 infonce:1:1 infonce:1:10 cosine:1:0 cosine:1:1 cosine:1:10 mse:1:0 mse:1:1 mse:1:10 infonce:0:1; do
    IFS=: read -r loss l1 l2 <<< "$setting"
    name="${loss}_l${l1}_r${l2}"
    [ -f "$runs/$name/best.pth" ] || eegcodec align train recipes/align_dac.yaml --data "$data" --out "$runs/$name" \
        --set loss.align="$loss" --set loss.lambda_align="$l1" --set loss.lambda_rec="$l2" \
        --set encoder_a="${enc_a:-audio-dac-small}" \
        --set threads="$threads" --set steps="${ALIGN_STEPS:-600}" > /dev/null
    eegcodec align eval "$runs/$name" --data "$data" --out "$report/$name" -q > /dev/null
    evals+=("$report/$name")
done
eegcodec bench align-table "${evals[@]}" > "$report/ablation.md"
cat "$report/ablation.md"
eeg=$(ls "$data"/eeg/Subject10_*.fif 2>/dev/null | head -1 || true)
[ -n "$eeg" ] && eegcodec align decode "$runs/infonce_l1_r1" "$eeg" -o "$report/Subject10_from_eeg.wav" --start 0.2 --seconds 9.6 --force
