#!/usr/bin/env bash
# Creates benchmarks/.venv-lightgbm: LightGBM's own environment for bench_ranking.py.
# LightGBM is a peer the ranking benchmark compares against, never a dependency of nomoretuning;
# it reads the benchmark's numpy arrays, so no torch is needed here.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
venv="$here/.venv-lightgbm"
python3 -m venv "$venv"
echo '*' > "$venv/.gitignore"  # git leaves the environment out (as Python >= 3.13's venv does)
"$venv/bin/pip" install --quiet lightgbm==4.7.0 numpy scikit-learn
"$venv/bin/python" -c "import lightgbm, numpy; print('lightgbm ready,', lightgbm.__version__)"
