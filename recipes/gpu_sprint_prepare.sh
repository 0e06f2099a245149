#!/usr/bin/env bash
# Training on an offline GPU machine, step 1, here on CPU: the wheels a GPU machine with torch
# but no internet lacks (.whl/, for its Python 3.12) and RECIPE's adapted training windows
# (sprint/), sized so that the repository with both stays small (BUDGET_MB for the windows).
# Both folders are git-ignored.
#   bash recipes/gpu_sprint_prepare.sh [RECIPE] [BUDGET_MB]     (default recipes/mc_unseen.yaml, 28)
# Then copy the repository with .whl/ and sprint/ to the GPU machine and run there
# `bash recipes/gpu_sprint.sh` (docs/training.md).
set -euo pipefail
cd "$(dirname "$0")/.."
py=${PYTHON:-.venv/bin/python}
recipe=${1:-recipes/mc_unseen.yaml}
mkdir -p .whl
plat=(--only-binary=:all: --python-version 3.12 --implementation cp --platform manylinux_2_28_x86_64
      --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 --platform any)
# what `import eegcodec.train` needs beyond a GPU image with torch and the common scientific packages
for p in descript-audio-codec==1.0.0 descript-audiotools==0.7.2 constriction==0.5.0 zstandard==0.25.0 \
         mne==1.13.2 edfio==0.4.18 soundfile==0.14.0 cffi pycparser decorator docstring-parser ffmpy \
         flatten-dict importlib-resources julius fire termcolor; do
    $py -m pip download -q --no-deps "${plat[@]}" -d .whl "$p"
done
$py -m pip wheel -q --no-deps -w .whl argbind==0.3.9 randomname==0.2.1   # published as sources only
$py tools/sprint.py pack "$recipe" --out sprint --budget-mb "${2:-28}"
du -sh .whl sprint
echo "tracked files: $(git ls-files -z | xargs -0 du -cb | tail -1 | cut -f1) bytes"
