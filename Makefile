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
.PHONY: handout classroom-env classroom-test classroom-bench classroom-release classroom-collect

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

# Grade SUBMISSIONS/<student>/<notebook>.ipynb into OUT/grades.csv and OUT/feedback/: each exercise's cell runs in
# a bubblewrap sandbox and is judged outside it (instructor/grade.py). UNSANDBOXED=1 runs without bubblewrap
# (resource limits only: trusted work only).
grade: $(VENV)/.dev-stack
	@test -n "$(SUBMISSIONS)" -a -n "$(OUT)" || { echo "usage: make grade SUBMISSIONS=dir OUT=dir [GRADE_TIMEOUT=s] [JOBS=n] [UNSANDBOXED=1]"; exit 2; }
	$(BIN)/python instructor/grade.py "$(SUBMISSIONS)" --out "$(OUT)" $(if $(GRADE_TIMEOUT),--timeout $(GRADE_TIMEOUT)) $(if $(JOBS),--jobs $(JOBS)) $(if $(UNSANDBOXED),--unsandboxed)

# ---- a class on JupyterHub (classroom/, README "Running a class on JupyterHub") ------------------------------
CLASSROOM_BUILD := build/classroom
CLASSROOM_ENV := $(CLASSROOM_BUILD)/env
CLASSROOM_PROXY := $(CLASSROOM_BUILD)/proxy/node_modules/.bin/configurable-http-proxy
LEARNERS ?= 1 5 10

# The learners' copy of the workbook without solutions, as a git repository nbgitpuller can pull (made or updated).
handout:
	@test -n "$(HANDOUT)" || { echo "usage: make handout HANDOUT=path/to/handout-repository"; exit 2; }
	$(PYTHON) classroom/handout.py --out "$(HANDOUT)"

# The course environment, made the way a server's is (classroom/install-environment.sh), plus the hub itself,
# and configurable-http-proxy from npm: what the hub test runs on.
$(CLASSROOM_ENV)/.installed: requirements.lock pyproject.toml classroom/requirements.txt classroom/requirements-hub.txt \
		classroom/install-environment.sh classroom/jupyter_server_config.json classroom/nbgrader_config.py
	rm -rf $(CLASSROOM_ENV)
	$(PYTHON) -m venv $(CLASSROOM_ENV)
	bash classroom/install-environment.sh $(CLASSROOM_ENV)
	$(CLASSROOM_ENV)/bin/pip install -r classroom/requirements-hub.txt
	touch $@

$(CLASSROOM_PROXY): classroom/proxy/package.json classroom/proxy/package-lock.json
	mkdir -p $(CLASSROOM_BUILD)/proxy
	cp classroom/proxy/package.json classroom/proxy/package-lock.json $(CLASSROOM_BUILD)/proxy/
	cd $(CLASSROOM_BUILD)/proxy && npm ci --no-audit --no-fund
	touch $@

classroom-env: $(CLASSROOM_ENV)/.installed $(CLASSROOM_PROXY)

# A real JupyterHub with 5 learners at once: log in, nbgitpuller link, run notebook 01, submit through nbgrader's
# exchange; collected and graded per learner; idle kernel and server culled (~4 min; CI runs it).
classroom-test: $(VENV)/.dev-stack classroom-env
	$(BIN)/python -m pytest tests/classroom -m hub

# Learners x memory x time: LEARNERS learners at once (default "1 5 10"), then one learner with all five
# notebooks open; writes bench-results/classroom.json.
classroom-bench: $(VENV)/.dev-stack classroom-env
	cd tests/classroom && ../../$(BIN)/python bench_classroom.py --learners $(LEARNERS) \
		--out ../../bench-results/classroom.json

# On the class's server: put notebooks/ in nbgrader's exchange (learners can then submit) ...
classroom-release: $(VENV)/.dev-stack
	$(BIN)/python classroom/exchange.py release

# ... and collect every learner's latest submission as SUBMISSIONS/<hub user>/<notebook>.ipynb for make grade.
classroom-collect: $(VENV)/.dev-stack
	@test -n "$(SUBMISSIONS)" || { echo "usage: make classroom-collect SUBMISSIONS=dir [NOTEBOOKS='01_problems_of_optimization ...']"; exit 2; }
	$(BIN)/python classroom/exchange.py collect --out "$(SUBMISSIONS)" $(if $(NOTEBOOKS),--notebooks $(NOTEBOOKS))

clean:
	rm -rf $(VENV) test-results bench-results
