#!/usr/bin/env bash
# Encoder B difficulty sweep: retrieval against the simulated response's SNR (-20 to 0 dB).
# One semi-synthetic set per SNR from the same background (EEGMAT subjects 00-11: test 10 and 11,
# validation 09, as in recipes/align_dac.yaml), the recipe's mapper (InfoNCE, lambda_align =
# lambda_rec = 1), evaluation with test, control and block-permutation chance; then the table
# and the figure.
#   bash recipes/align_snr.sh [RUNS_DIR] [REPORT_DIR]      (STEPS, THREADS, SNRS override)
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-runs/align_snr}
report=${2:-benchmarks/align/snr}
threads=${THREADS:-2}
mkdir -p "$report"
evals=()
for snr in ${SNRS:--20 -15 -10 -5 0}; do
    data="$runs/data_snr$snr"
    [ -f "$data/manifest.csv" ] || eegcodec align make-synthetic --out "$data" --snr-db "$snr" -q \
        --background ../shared/eeg/eegmat/Subject0[0-9]_[12].edf ../shared/eeg/eegmat/Subject1[01]_[12].edf
    [ -f "$runs/snr$snr/best.pth" ] || eegcodec align train recipes/align_dac.yaml --data "$data" \
        --out "$runs/snr$snr" --set threads="$threads" --set steps="${STEPS:-600}" > /dev/null
    eegcodec align eval "$runs/snr$snr" --data "$data" --out "$report/snr$snr" -q > /dev/null
    evals+=("$report/snr$snr")
done
eegcodec bench align-table --plot "$report/snr.png" "${evals[@]}" > "$report/snr.md"
cat "$report/snr.md"
