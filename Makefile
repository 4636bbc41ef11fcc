# edgebench: thin wrappers. `make demo` runs the pipeline on this machine; `make test` runs the tests.
# Everything installs into a virtual environment in the repo (.venv) on first use.
SHELL := /bin/bash
VENV   ?= .venv
PY     := $(VENV)/bin/python
DATA   ?= $(EDGEBENCH_DATA)
PYTEST_ARGS ?=
# when make started: `make demo` times its venv stage from here
STARTED := $(shell date +%s)
# TF 2.12 runs on Python 3.8-3.11: take the newest of those that is installed
PYTHON ?= $(shell for v in 3.11 3.10 3.9 3.8; do command -v python$$v >/dev/null && { echo python$$v; break; }; done)

.PHONY: setup setup-light demo test test-unit lint check-wheels py38 arm64 clean help
help:
	@echo "make demo [DATA=/path/to/cifar10]   train, export, bench and report on this machine (no Docker, no GPU)"
	@echo "make setup-light                    orchestration only (build, bench --target, deploy, report): a Jetson board"
	@echo "make test                           set up and run the test suite (prints what it skipped and why)"
	@echo "make test-unit                      only the fast hermetic unit tests"
	@echo "make lint                           Python 3.8 compatibility of src/ (vermin), then ruff ([tool.ruff] in pyproject.toml)"
	@echo "make check-wheels                   every pinned package of every target has a wheel for its platform/Python"
	@echo "make py38                           unit tests + a small train/export/bench on a real Python 3.8"
	@echo "make arm64                          build, smoke-test and bench the arm64-cpu image under qemu (about 5 min)"

setup: $(VENV)/.installed
$(VENV)/.installed: pyproject.toml requirements/host.txt requirements/test.txt
	@test -n "$(PYTHON)" || { echo "need Python 3.8-3.11 for TensorFlow 2.12 (python3.11 ... python3.8 not found)"; exit 1; }
	@echo "setting up $(VENV) with $(PYTHON) (a few minutes the first time; pip's output: $(VENV)/setup.log)"
	@$(PYTHON) -m venv $(VENV)
	@{ $(PY) -m pip install -q --upgrade pip && \
	   $(PY) -m pip install -q -r requirements/host.txt -r requirements/test.txt && \
	   $(PY) -m pip install -q --no-deps -e . ; } > $(VENV)/setup.log 2>&1 \
	  || { tail -n 30 $(VENV)/setup.log; echo "setup failed: the full pip output is in $(VENV)/setup.log"; exit 1; }
	@touch $@

# A Jetson board (aarch64, Python 3.8): host.txt has no install there (no tensorflow-cpu for aarch64). Only
# invoke, the docker SDK with ssh, jinja2, PyYAML and the kit's core; training and export run on a workstation.
setup-light: $(VENV)/.installed-light
$(VENV)/.installed-light: pyproject.toml requirements/host-light.txt
	@test -n "$(PYTHON)" || { echo "need Python 3.8-3.11 (python3.11 ... python3.8 not found)"; exit 1; }
	@echo "setting up $(VENV) (light: orchestration only) with $(PYTHON); pip's output: $(VENV)/setup.log"
	@$(PYTHON) -m venv $(VENV) || { echo "no venv module: sudo apt-get install -y python3-venv"; exit 1; }
	@{ $(PY) -m pip install -q --upgrade pip && \
	   $(PY) -m pip install -q -r requirements/host-light.txt && \
	   $(PY) -m pip install -q --no-deps -e . ; } > $(VENV)/setup.log 2>&1 \
	  || { tail -n 30 $(VENV)/setup.log; echo "setup-light failed: the full pip output is in $(VENV)/setup.log"; exit 1; }
	@touch $@

demo: setup
	@$(VENV)/bin/invoke demo --started $(STARTED) $(if $(DATA),--data "$(DATA)")

test: setup lint
	$(PY) -m pytest tests $(PYTEST_ARGS)

test-unit: setup
	$(PY) -m pytest tests/unit $(PYTEST_ARGS)

lint: setup
	@$(VENV)/bin/vermin --target=3.8- --no-tips --violations --eval-annotations --backport dataclasses src/ tests/plugins/ \
	  > $(VENV)/vermin.log 2>&1 || { cat $(VENV)/vermin.log; echo "lint: code that runs in containers must run on Python 3.8"; exit 1; }
	@echo "lint: src/ runs on Python 3.8 (vermin; log $(VENV)/vermin.log)"
	$(VENV)/bin/ruff check src tests tasks.py tools

check-wheels: setup
	$(PY) .ci/check-wheels

py38:
	bash .ci/py38-check

arm64: setup
	bash .ci/arm64-check

clean:
	rm -rf build .pytest_cache reports/demo results/demo-local.json
