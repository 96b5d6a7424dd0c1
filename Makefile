# The two commands of the README:
#   make demo   - set up if needed, generate the synthetic dataset, train + evaluate CFAD, render a demo video
#   make test   - set up if needed, run the test suite
# Both create/refresh the virtual environment in ./.venv first (tools/setup_env.sh; on a fresh machine it
# compiles mmcv's ops, its longest step; seconds afterwards).
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
PYTEST_ARGS ?=

.PHONY: setup demo test lint check-kernels clean-demo

setup:
	@bash tools/setup_env.sh

demo: setup
	$(PY) tools/run_synthetic_demo.py

test: setup
	$(PY) -m pytest tests $(PYTEST_ARGS)

# ruff check with the rules of ruff.toml (pycodestyle, pyflakes, isort); .ci/run runs it before the tests
lint: setup
	$(VENV)/bin/ruff check .

# the model and learning tests under ATEN_CPU_CAPABILITY=default, avx2 and the machine's own kernels (CI runs it)
check-kernels: setup
	bash tools/check_cpu_kernels.sh 3

clean-demo:
	rm -rf data/synth work_dirs/synthetic_demo
