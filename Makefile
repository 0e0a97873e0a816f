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

$(VENV)/.student-stack: requirements.lock pyproject.toml | $(BIN)/python
	$(BIN)/pip install -r requirements.lock
	$(BIN)/pip install --no-deps -e .
	touch $@

$(VENV)/.dev-stack: requirements-dev.lock requirements.lock pyproject.toml | $(BIN)/python
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

# Every instructor source notebook (solutions in) runs under nbval twice; cells tagged nbval-check-output must
# reproduce their stored output both times. First with the default thread counts, then as a different machine
# would: one thread, and torch's, MKL's and OpenBLAS's generic kernels instead of this CPU's (on x86-64). Only
# outputs that are the same on every CPU, BLAS and thread count may be tagged (DEVELOPERS.md).
NBVAL := $(BIN)/python -m pytest --nbval-lax --nbval-cell-timeout=$(CELL_TIMEOUT) \
	--nbval-sanitize-with tests/nbval_sanitize.cfg instructor/source
DEFAULT_THREADS := -u OMP_NUM_THREADS -u MKL_NUM_THREADS -u OPENBLAS_NUM_THREADS
ONE_THREAD := OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1
OTHER_KERNELS := ATEN_CPU_CAPABILITY=default MKL_CBWR=COMPATIBLE \
	$(if $(filter x86_64,$(shell uname -m)),OPENBLAS_CORETYPE=Prescott)

notebooks: $(VENV)/.dev-stack
	env $(DEFAULT_THREADS) $(NBVAL)
	env $(ONE_THREAD) $(OTHER_KERNELS) $(NBVAL)

# Regenerate the student notebooks in notebooks/ from the instructor sources (nbgrader generate_assignment).
release: $(VENV)/.dev-stack
	$(BIN)/python instructor/release.py

# Grade SUBMISSIONS/<student>/<notebook>.ipynb into OUT/grades.csv and OUT/feedback/ (nbgrader autograde).
grade: $(VENV)/.dev-stack
	@test -n "$(SUBMISSIONS)" -a -n "$(OUT)" || { echo "usage: make grade SUBMISSIONS=dir OUT=dir [GRADE_TIMEOUT=s] [JOBS=n]"; exit 2; }
	$(BIN)/python instructor/grade.py "$(SUBMISSIONS)" --out "$(OUT)" $(if $(GRADE_TIMEOUT),--timeout $(GRADE_TIMEOUT)) $(if $(JOBS),--jobs $(JOBS))

clean:
	rm -rf $(VENV) test-results bench-results
