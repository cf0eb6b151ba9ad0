# Two entry points for a fresh machine: `make demo` (the main job) and `make test` (the test suite).
# Both create .venv if it is absent and install drc into it with the CPU build of torch.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
DEMO_OUT ?= demo_out
PRESET ?= default
SCENARIO ?= stickers
# This machine keeps the torch 2.13.0 CPU wheel on disk (pip's find-links takes it). Elsewhere, take
# the CPU wheel from PyTorch's own index instead of PyPI's multi-GB CUDA build.
TORCH_SPEC ?= torch==2.13.0
TORCH_INDEX := $(if $(wildcard /opt/wheels/torch-*),,--extra-index-url https://download.pytorch.org/whl/cpu)

.PHONY: setup demo test lint clean-venv

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q $(TORCH_INDEX) "$(TORCH_SPEC)"
	$(PY) -m pip install -q -e ".[dev]"
	@$(PY) -c "import torch; print('drc: torch', torch.__version__, 'cuda' if torch.cuda.is_available() else 'cpu')"
	touch $@

setup: $(VENV)/.installed

demo: $(VENV)/.installed
	$(VENV)/bin/drc demo --out $(DEMO_OUT) --preset $(PRESET) --scenario $(SCENARIO)

test: $(VENV)/.installed
	HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 $(PY) -m pytest

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check src tests bench

clean-venv:
	rm -rf $(VENV)
