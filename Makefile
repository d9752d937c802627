# The two commands a reader needs: `make book` and `make test` (see README.md).
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.dmm-installed
FASHION_MNIST := /usr/share/datasets/fashion-mnist
# Chapters are the .md files under book/ that carry a Jupyter kernelspec (jupytext).
CHAPTERS  := $(sort $(shell grep -l '^kernelspec:' book/*.md 2>/dev/null))
NOTEBOOKS := $(CHAPTERS:.md=.ipynb)

.PHONY: help venv data book test test-unit test-notebooks test-build sync bench clean

help:
	@echo "make book   - create $(VENV), install everything, build the book into _build/html"
	@echo "make test   - unit tests, every chapter executed with nbval, strict book build (profile ci)"
	@echo "make sync   - regenerate the output-free .ipynb twins of the .md chapters"
	@echo "make bench  - run the benchmarks in benchmarks/ (installs the comparison libraries)"
	@echo "make clean  - remove build outputs (keeps $(VENV) and the weight cache)"

# ---- environment --------------------------------------------------------------
$(STAMP): requirements.txt pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	$(BIN)/python -m pip install --quiet --no-deps -e .
	$(BIN)/python -c "import dmmlib, torch, torchvision; print('dmmlib', dmmlib.__version__, '| torch', torch.__version__)"
	@touch $@

venv: $(STAMP)

# Fashion-MNIST from Debian's package when we may install it; otherwise dmmlib
# explains at run time what to install or set (DMM_DATA).
data:
	@if [ -d $(FASHION_MNIST) ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  echo "Installing Debian package dataset-fashion-mnist"; \
	  apt-get install -y -qq dataset-fashion-mnist >/dev/null 2>&1 || \
	  { apt-get update -qq && apt-get install -y -qq dataset-fashion-mnist >/dev/null; }; \
	else \
	  echo "NOTE: $(FASHION_MNIST) missing: run 'sudo apt-get install dataset-fashion-mnist' or set DMM_DATA"; \
	fi

# ---- the book -----------------------------------------------------------------
book: $(STAMP) data
	DMM_PROGRESS=0 $(BIN)/jupyter-book build . --builder html
	@echo "Open _build/html/index.html in a browser."

# ---- tests --------------------------------------------------------------------
test: export DMM_PROFILE ?= ci
test: $(STAMP) data
	$(MAKE) test-unit test-notebooks test-build

test-unit: $(STAMP)
	$(BIN)/pytest tests -q

test-notebooks: $(STAMP)
	$(BIN)/pytest -q -p no:cacheprovider --nbval-lax --nbval-current-env \
	  --nbval-cell-timeout=900 $(NOTEBOOKS)

# Strict: warnings are errors and a failing cell fails the build (raise_on_error).
# The execution cache is cleared so every chapter really runs.
test-build: $(STAMP)
	rm -rf _build/html _build/.jupyter_cache _build/.doctrees _build/jupyter_execute
	DMM_PROGRESS=0 $(BIN)/jupyter-book build . --builder html -W --keep-going

sync: $(STAMP)
	$(BIN)/jupytext --to ipynb $(CHAPTERS)

bench: $(STAMP)
	bash benchmarks/run_all.sh

clean:
	rm -rf _build
