#!/usr/bin/env bash
# Regenerate the benchmark reports in benchmarks/ (results.json, report.md, figures) from ../shared/eeg.
# Not part of this script: benchmarks/align (bash recipes/align.sh, align_snr.sh, align_finetune.sh) and
# benchmarks/runtimes (needs onnx and onnxruntime; see benchmarks/runtimes/README.md).
# Held out from the shipped models' training: EEGBCI S001 R01/R02 and EEGMAT subjects 10/11.
# The axes models come from recipes/train_axes.sh (runs/axis_*). Takes about an hour on 2 CPU cores.
#   bash benchmarks/run_all.sh
set -euo pipefail
cd "$(dirname "$0")/.."
eeg=../shared/eeg
out=benchmarks
held_out=("$eeg"/eegbci_S001/S001R0[12].edf "$eeg"/eegmat/Subject1[01]_[12].edf)

eegcodec bench rd "${held_out[@]}" --models dac-small mc-small --force --out $out/rd
# 60-s crops of EEGBCI R01-R04 (R03/R04 were in the models' training data)
eegcodec bench rd "$eeg"/eegbci_S001/S001R0[1-4].edf --models dac-small mc-small --force --out $out/rd_core
eegcodec bench rd "${held_out[@]}" --crop 30 --force --out $out/rd_axes --models \
  vocab256=runs/axis_vocab256/best.pth vocab1024=runs/axis_vocab1024/best.pth vocab4096=runs/axis_vocab4096/best.pth \
  rate80=runs/axis_rate80/best.pth rate320=runs/axis_rate320/best.pth
eegcodec bench downstream "$eeg"/eegbci_S001/S001R0[1248].edf "$eeg"/eegbci_S001/S001R12.edf "$eeg"/eegmat \
  --models dac-small mc-small --force --out $out/downstream
# imagined fists with CSP: the training subject's three imagery runs, then four unseen subjects
eegcodec bench downstream "$eeg"/eegbci_S001/S001R04.edf "$eeg"/eegbci_S001/S001R08.edf "$eeg"/eegbci_S001/S001R12.edf \
  --models mc-small --codebooks 2 6 --force --out $out/downstream_seen
eegcodec bench downstream "$eeg"/eegbci_more/S00[2345]R04.edf --models mc-small --codebooks 2 6 --force --out $out/downstream_unseen
eegcodec bench speed "$eeg"/eegbci_S001/S001R01.edf --models mc-small dac-small --minutes 2 10 60 --force --out $out/speed_models
eegcodec bench speed "$eeg"/eegbci_S001/S001R01.edf --models mc-320 --minutes 2 60 --force --out $out/speed_mc320
eegcodec bench speed "$eeg"/eegbci_S001/S001R01.edf --models dac16k-sized --minutes 1 --force --out $out/speed_dac16k
# tokenize and encoder B's embedding, quiet and beside a busy loop (an 8-subject semi-synthetic set)
[ -f runs/align_s8/manifest.csv ] || eegcodec align make-synthetic --out runs/align_s8 --max-subjects 8 -q
eegcodec bench speed "$eeg"/eegbci_S001/S001R01.edf --models mc-small --minutes 2 --repeats 1 --busy --tokenize \
  --embed runs/align_s8 --embed-recipe recipes/align_dac.yaml --embed-set "data.test_subjects=[]" "data.val_subjects=[]" \
  --force --out $out/speed_tokens
# random access (read_raw(...).get_data of 10 s from the middle), one thread
OMP_NUM_THREADS=1 eegcodec bench speed "$eeg"/eegbci_S001/S001R01.edf --models lossless max-error=2uV prd=10 default \
  --minutes 1 60 --repeats 1 --force --out $out/speed_window
# same subject vs unseen subjects, with the multichannel anchor (pca_dct), lossless and --max-error rows;
# shipped models only, so that anyone can rerun it
eegcodec bench rd "$eeg"/eegbci_S001/S001R0[12].edf "$eeg"/eegbci_more/S00[45]R0[12].edf "$eeg"/eegmat/Subject1[01]_1.edf \
  "$eeg"/eegmat/Subject2[23]_1.edf --models mc-small mc-320 --codebooks 1 2 4 6 12 --force --out $out/rd_unseen
# the same unseen EEGBCI files with a 60-Hz notch on original and reconstructions (S005 holds mains)
eegcodec bench notch "$eeg"/eegbci_more/S00[45]R0[12].edf --model mc-small --codebooks 1 6 \
  > $out/rd_unseen/notch.json
# bits per code under a learned prior, priors fitted on the models' training runs
eegcodec bench prior "${held_out[@]}" --train "$eeg"/eegbci_S001/S001R0[3-9].edf "$eeg"/eegbci_S001/S001R1[0-4].edf \
  "$eeg"/eegmat/Subject0[0-9]_[12].edf --models mc-small dac-small --force --out $out/prior
# the prior's speed cost: each model against a copy of its weights without the prior beside them
mkdir -p runs/mc-small-packed runs/dac-small-packed
cp eegcodec/models/mc-small.pth runs/mc-small-packed/ && cp eegcodec/models/dac-small.pth runs/dac-small-packed/
eegcodec bench speed "$eeg"/eegbci_S001/S001R01.edf --models mc-small dac-small runs/mc-small-packed/mc-small.pth \
  runs/dac-small-packed/dac-small.pth --minutes 10 --repeats 3 --force --out $out/speed_prior
# --lossless and --max-error against flac, wavpack, xz and zstd: unseen EEGBCI subjects, EEGMAT 12-23, S001 apart
OMP_NUM_THREADS=1 eegcodec bench lossless "$eeg"/eegbci_more/*.edf "$eeg"/eegmat/Subject1[2-9]_*.edf "$eeg"/eegmat/Subject2*_*.edf \
  "$eeg"/eegbci_S001/S001R0[1-3].edf --force --out $out/lossless
# the numcodecs codec in zarr chunks against Blosc, Zstd, LZ4 and FLAC
eegcodec bench zarr "$eeg"/eegbci_more/S002R01.edf "$eeg"/eegbci_more/S003R03.edf "$eeg"/eegbci_more/S004R04.edf \
  "$eeg"/eegbci_more/S005R02.edf "$eeg"/eegmat/Subject12_1.edf "$eeg"/eegmat/Subject20_2.edf "$eeg"/eegmat/Subject23_1.edf \
  --force --out $out/zarr_codecs
# the tokens under a linear probe on unseen subjects: EEGMAT rest/arithmetic, EEGBCI eyes open/closed (S001 apart)
eegcodec bench probe --eeg "$eeg" --force --out $out/probe
# the reader under damaged and crafted files
python tools/fuzz.py --cases 10000 --json $out/reliability/fuzz.json > /dev/null
# the token files' decoder correction against the same files without it (unseen subjects)
OMP_NUM_THREADS=1 python tools/correction_bench.py --model mc-small --depths 2,6 --json $out/correction/results.json \
  "$eeg"/eegbci_more/S00[2-5]R0[12].edf "$eeg"/eegmat/Subject1[2-9]_[12].edf "$eeg"/eegmat/Subject2[0-3]_[12].edf
