# movierec_nb: the two commands of the README, plus conveniences.
#   make reproduce   set up .venv, then regenerate reports/ with papermill (profile "quick", real data)
#   make test        set up .venv, then export the package from nbs/, lint it (ruff) and run every test
#   make readme      regenerate README.md from nbs/index.ipynb and the quick reports
#   make lab         open JupyterLab in the project's environment
# Data: set MOVIEREC_DATA_DIR to a folder of extracted MovieLens releases, or let the code download them.

PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PROFILE ?= quick
JOBS ?= 2
# torch first, pinned to the CPU wheel, so that no multi-GB CUDA build is pulled in by a dependency
TORCH  ?= torch==2.13.0

.PHONY: reproduce test lint readme lab venv export clean-nbs bench

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "Python 3.11 is required ($(PYTHON) not found); set PYTHON=/path/to/python3.11"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet "$(TORCH)"
	$(BIN)/pip install --quiet -e ".[dev]"
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (movierec_nb)" >/dev/null
	touch $(STAMP)

venv: $(STAMP)

export: $(STAMP)
	$(BIN)/nbdev-export

lint: $(STAMP)
	$(BIN)/ruff check movierec_nb tests nbs

# The paper chapters (10-14) run in full, every cell and check, through papermill in tests/test_chapters.py;
# nbdev-test runs every other notebook (a plain `nbdev-test` runs them all).
test: export lint
	$(BIN)/nbdev-test --n-workers 2 --skip-file-re '^1[0-4]_'
	$(BIN)/python -m pytest -q

readme: export
	$(BIN)/python -m movierec_nb.readme

reproduce: export
	$(BIN)/python -m movierec_nb.reproduce --profile $(PROFILE) --jobs $(JOBS)

bench: export
	$(BIN)/python -m movierec_nb.bench

lab: $(STAMP)
	$(BIN)/pip install --quiet -e ".[dev,lab]"
	$(BIN)/jupyter lab nbs/

clean-nbs: $(STAMP)
	$(BIN)/nbdev-clean
