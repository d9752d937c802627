#!/usr/bin/env bash
# Benchmark dmmlib.attacks against torchattacks, foolbox, ART and adv-lib (CPU, one process).
# Usage: benchmarks/run_attacks.sh [bench_attacks.py options, e.g. --n 128 --threads 1]
# Writes benchmarks/results_attacks_cpu.json, results_deepfool_cpu.json, results_apgd_cpu.json and results_minimal_cpu.json; summarised in benchmarks/README.md ("## Attacks").
#
# The comparison libraries never enter the book's environment (.venv): they go into
# .venv-bench, a virtual environment that sees .venv's packages (torch, dmmlib, ...)
# through a .pth file and adds only what the benchmark needs.
set -euo pipefail
cd "$(dirname "$0")/.."
BASE=${PYTHON:-.venv/bin/python}
BENCH=.venv-bench
if [[ ! -x "$BENCH/bin/python" ]]; then
  "$BASE" -m venv "$BENCH"
  "$BASE" -c "import sysconfig; print(sysconfig.get_paths()['purelib'])" > \
    "$("$BENCH/bin/python" -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")/_dmm_base_env.pth"
fi
PY="$BENCH/bin/python"

torch_before=$("$PY" -c 'import torch, torchvision; print(torch.__version__, torchvision.__version__)')
# foolbox and ART: the `bench` extra of pyproject.toml (their dependencies are small).
"$PY" -m pip install --quiet "foolbox==3.3.4" "adversarial-robustness-toolbox==1.20.1" packaging
# torchattacks pins an old `requests` and adv-lib needs `visdom` (which does not build) for its
# optional logger only: install both without dependencies (torch, scipy, tqdm are there already).
"$PY" -m pip install --quiet --no-deps "torchattacks==3.5.1" "adv-lib==0.2.8"
torch_after=$("$PY" -c 'import torch, torchvision; print(torch.__version__, torchvision.__version__)')
if [[ "$torch_before" != "$torch_after" ]]; then
  echo "run_attacks.sh: installing the comparison libraries changed torch/torchvision" \
       "($torch_before -> $torch_after); delete $BENCH and check the pins" >&2
  exit 1
fi

# dmmlib is an editable install in .venv, which a .pth-linked environment cannot see: use the checkout.
PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" "$PY" benchmarks/bench_attacks.py "$@"
# DeepFool per model shape, dmmlib's two gradient paths against adv-lib and a bare floor
PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" "$PY" benchmarks/bench_deepfool.py
# APGD against torchattacks' on adversarially trained models
PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" "$PY" benchmarks/bench_apgd.py
# minimal-norm L2: minimal_l2 against adv-lib's ALMA at equal gradient budgets
PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" exec "$PY" benchmarks/bench_minimal.py
