#!/usr/bin/env bash
# Benchmark dmmlib.attacks against torchattacks, foolbox, ART and adv-lib (CPU, one process).
# Usage: benchmarks/run_attacks.sh [bench_attacks.py options, e.g. --n 128 --threads 1]
# Writes benchmarks/results_attacks_cpu.json; summarised in benchmarks/README.md ("## Attacks").
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}

torch_before=$("$PY" -c 'import torch, torchvision; print(torch.__version__, torchvision.__version__)')
# foolbox and ART: the `bench` extra of pyproject.toml (their dependencies are small).
"$PY" -m pip install --quiet "foolbox==3.3.4" "adversarial-robustness-toolbox==1.20.1" packaging
# torchattacks pins an old `requests` and adv-lib needs `visdom` (which does not build) for its
# optional logger only: install both without dependencies (torch, scipy, tqdm are there already).
"$PY" -m pip install --quiet --no-deps "torchattacks==3.5.1" "adv-lib==0.2.8"
torch_after=$("$PY" -c 'import torch, torchvision; print(torch.__version__, torchvision.__version__)')
if [[ "$torch_before" != "$torch_after" ]]; then
  echo "run_attacks.sh: installing the comparison libraries changed torch/torchvision" \
       "($torch_before -> $torch_after); reinstall the pinned versions" >&2
  exit 1
fi

exec "$PY" benchmarks/bench_attacks.py "$@"
