# Two commands do all the set-up on a fresh machine:
#   make lab    create .venv, install the pinned student stack and course_lib, open JupyterLab on notebooks/
#   make test   the same set-up plus test tools, then lint, unit tests, every notebook (nbval) and every
#               student notebook in a real browser
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8888
# JupyterLab refuses to run as root unless told to (containers, CI).
ROOT_FLAG := $(if $(filter 0,$(shell id -u)),--allow-root)
CELL_TIMEOUT ?= 120

.PHONY: lab test lint unit notebooks browser bench release grade clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# torch first, on its own: the CPU build (+cpu) from PyTorch's wheel index on Linux and Windows, PyPI's wheel on
# macOS (the lock's environment markers choose). Only this step consults that index; --no-deps because the lock
# pins everything torch needs. PyPI's own torch for Linux is the CUDA build, several GB: the lock never asks
# for it (tests/test_environment.py).
define install_torch
	grep '^torch==' requirements.lock > $(VENV)/torch-requirements.txt
	$(BIN)/pip install --no-deps --extra-index-url https://download.pytorch.org/whl/cpu -r $(VENV)/torch-requirements.txt
endef

$(VENV)/.student-stack: requirements.lock pyproject.toml | $(BIN)/python
	$(install_torch)
	$(BIN)/pip install -r requirements.lock
	$(BIN)/pip install --no-deps -e .
	touch $@

$(VENV)/.dev-stack: requirements-dev.lock requirements.lock pyproject.toml | $(BIN)/python
	$(install_torch)
	$(BIN)/pip install -r requirements-dev.lock
	$(BIN)/pip install --no-deps -e .
	touch $@ $(VENV)/.student-stack

lab: $(VENV)/.student-stack
	$(BIN)/jupyter lab --ip=127.0.0.1 --port=$(PORT) --ServerApp.root_dir=notebooks $(ROOT_FLAG)

test: $(VENV)/.dev-stack
	$(MAKE) lint unit notebooks browser

lint: $(VENV)/.dev-stack
	$(BIN)/ruff check .

unit: $(VENV)/.dev-stack
	$(BIN)/python -m pytest tests -m "not browser"

# Every student notebook in JupyterLab in headless Chromium (skips without it, fails under CI=true).
browser: $(VENV)/.dev-stack
	$(BIN)/python -m pytest tests/browser

# Run time and memory of every notebook, widget latency, RuleOptimizer speed, against the README's budgets.
# Prints a table and writes bench-results/bench.json; BENCH_FLAGS=--strict exits 1 on a missed budget.
bench: $(VENV)/.dev-stack
	$(BIN)/python bench/bench.py $(BENCH_FLAGS)

# Every instructor source notebook (solutions in) runs under nbval; cells tagged nbval-check-output must
# reproduce their stored output.
notebooks: $(VENV)/.dev-stack
	$(BIN)/python -m pytest --nbval-lax --nbval-cell-timeout=$(CELL_TIMEOUT) \
		--nbval-sanitize-with tests/nbval_sanitize.cfg instructor/source

# Regenerate the student notebooks in notebooks/ from the instructor sources (nbgrader generate_assignment).
release: $(VENV)/.dev-stack
	$(BIN)/python instructor/release.py

# Grade SUBMISSIONS/<student>/<notebook>.ipynb into OUT/grades.csv and OUT/feedback/: each exercise's cell runs in
# a bubblewrap sandbox and is judged outside it (instructor/grade.py). UNSANDBOXED=1 runs without bubblewrap
# (resource limits only: trusted work only).
grade: $(VENV)/.dev-stack
	@test -n "$(SUBMISSIONS)" -a -n "$(OUT)" || { echo "usage: make grade SUBMISSIONS=dir OUT=dir [GRADE_TIMEOUT=s] [JOBS=n] [UNSANDBOXED=1]"; exit 2; }
	$(BIN)/python instructor/grade.py "$(SUBMISSIONS)" --out "$(OUT)" $(if $(GRADE_TIMEOUT),--timeout $(GRADE_TIMEOUT)) $(if $(JOBS),--jobs $(JOBS)) $(if $(UNSANDBOXED),--unsandboxed)

clean:
	rm -rf $(VENV) test-results bench-results
