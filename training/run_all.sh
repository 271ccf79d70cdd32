#!/usr/bin/env bash
# Full pipeline for the embedded default model (see training/README.md).
# Usage: training/run_all.sh [extra train.py args for both runs, e.g. --device cuda --threads 2]
# Training is the shipped model's two-run recipe with token-based schedules (README: "How the
# shipped model was trained"): run 1 to 15M tokens (cosine), run 2 to 35M tokens with the
# previous-token auxiliary loss and a warmup-stable-decay schedule.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-/usr/bin/python3}
$PY training/corpus.py
$PY training/tokenizer.py
node training/check_tokenizer.mjs training/work/tokenizer.json
nice -n 19 $PY training/train.py --max-tokens 15000000 "$@"
nice -n 19 $PY training/train.py --resume --restart-schedule --max-tokens 35000000 --batch 2 --schedule wsd \
  --decay-frac 0.2 --warmup 100 --prev-aux 0.5 --prev-head 0 --eval-every 250 "$@"
$PY training/export.py
node training/check_tokenizer.mjs default-model/tokenizer.json
$PY training/golden.py
$PY training/report.py
