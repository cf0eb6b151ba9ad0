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

# Debian packages the service's tests use: Chromium for the studio's browser test (driven by Playwright
# with executable_path: no browser download) and a PostgreSQL server for the API tests on PostgreSQL;
# npm, which `drc data emoji` runs once to fetch the vendor emoji packages (`npm pack`) into its cache.
# Installed only where missing, and only as root with apt-get; elsewhere (or offline) the two tests
# skip and say why, and `drc data emoji` says what to run.
SYSTEM_PKGS = $(if $(shell command -v chromium || command -v chromium-browser),,chromium) \
              $(if $(wildcard /usr/lib/postgresql/*/bin/initdb),,postgresql) \
              $(if $(shell command -v npm),,npm)

.PHONY: setup system-deps demo test lint clean-venv

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q $(TORCH_INDEX) "$(TORCH_SPEC)"
	$(PY) -m pip install -q -e ".[dev,serve]"
	@$(PY) -c "import torch; print('drc: torch', torch.__version__, 'cuda' if torch.cuda.is_available() else 'cpu')"
	touch $@

setup: $(VENV)/.installed system-deps

system-deps:
	@pkgs="$(strip $(SYSTEM_PKGS))"; \
	if [ -z "$$pkgs" ]; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  echo "drc: installing $$pkgs (apt-get)"; \
	  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -q $$pkgs >/dev/null; } \
	  || echo "drc: could not install $$pkgs; the tests (and drc data emoji) that need them will skip or say so"; \
	else echo "drc: $$pkgs missing and not root: the tests (and drc data emoji) that need them will skip or say so"; fi

demo: $(VENV)/.installed
	$(VENV)/bin/drc demo --out $(DEMO_OUT) --preset $(PRESET) --scenario $(SCENARIO)

test: $(VENV)/.installed system-deps
	HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 $(PY) -m pytest

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check src tests bench

clean-venv:
	rm -rf $(VENV)
