# Two entry points for a fresh machine: `make demo` (the main job) and `make test` (the test suite).
# Both create .venv and install loc3r on first use. Override the torch wheel with e.g. TORCH="torch>=2.4".
PYTHON ?= python3
TORCH ?= torch==2.13.0
LMMS_EVAL ?= lmms-eval==0.7.3
VENV := .venv
BIN := $(VENV)/bin
DEMO_OUT ?= runs/demo

.PHONY: install demo test lint

# lmms-eval for the plugin (loc3r.integrations.lmms_eval) goes in without its dependencies (they include
# torchvision), plus what its evaluator, task loader, metric registry and result table import; filelock<4 for its
# lock patch.
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q "$(TORCH)"
	$(BIN)/python -m pip install -q -e ".[dev]"
	$(BIN)/python -m pip install -q --no-deps "$(LMMS_EVAL)"
	$(BIN)/python -m pip install -q loguru sacrebleu evaluate tenacity pytablewriter "filelock<4"
	@if $(BIN)/python -c "import torchvision" 2>/dev/null; then echo "torchvision must not be installed" >&2; exit 1; fi
	touch $@

install: $(VENV)/.installed

demo: install
	$(BIN)/loc3r demo --out $(DEMO_OUT)

lint: install
	$(BIN)/ruff check src tests benchmarks

test: lint
	$(BIN)/python -m pytest -n 2 -q --junitxml=.ci-report.xml
	$(BIN)/python .ci/check_tests_ran.py .ci-report.xml
