#!/usr/bin/env bash
# Creates benchmarks/.venv-rechub: torch-rechub's own environment for bench_trainer.py.
# torch is pinned and installed first, so that pip does not pull a multi-GB CUDA build.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
venv="$here/.venv-rechub"
python3 -m venv "$venv"
"$venv/bin/pip" install --quiet torch==2.13.0
"$venv/bin/pip" install --quiet torch-rechub==0.9.0
"$venv/bin/python" -c "import torch_rechub, torch; print('torch-rechub ready, torch', torch.__version__)"
