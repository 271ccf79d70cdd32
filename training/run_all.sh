#!/usr/bin/env bash
# Full pipeline for the embedded default model (see training/README.md).
# Usage: training/run_all.sh [extra train.py args, e.g. --max-tokens 20000000 --device cuda]
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-/usr/bin/python3}
$PY training/corpus.py
$PY training/tokenizer.py
node training/check_tokenizer.mjs training/work/tokenizer.json
nice -n 19 $PY training/train.py "$@"
$PY training/export.py
node training/check_tokenizer.mjs default-model/tokenizer.json
$PY training/report.py
$PY training/golden.py
