# movierec_nb: the two commands of the README, plus conveniences.
#   make reproduce   set up .venv, then regenerate reports/ with papermill (profile "quick", real data); it prints its plan first
#   make plan        what `make reproduce` would run, why, and how long each report took last time (runs nothing)
#   make test        set up .venv, then export the package from nbs/, lint it (ruff) and run every test
#   make readme      regenerate README.md from nbs/index.ipynb and the quick reports
#   make lab         open JupyterLab in the project's environment (headless: it prints the URL to open)
#   make docs        build the course site into _site/html (offline: Sphinx + MyST-NB; open _site/html/index.html)
# Data: set MOVIEREC_DATA_DIR to a folder of extracted MovieLens releases, or let the code download them.
#
# .venv is made once: the install stamp follows the dependency lists of pyproject.toml (and the torch
# pin), not the file's modification time, which nbdev-export changes on every call.

PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
DEPS   := $(VENV)/.dependencies
STAMP  := $(VENV)/.installed
EXPORTED := $(VENV)/.exported
LAB    := $(VENV)/.installed-lab
DOCS   := $(VENV)/.installed-docs
PROFILE ?= quick
JOBS ?= 2
# torch is installed first, so that no dependency pulls a multi-GB CUDA build. By default it comes from
# PyTorch's CPU wheel index; TORCH_INDEX= (empty) uses pip's own configuration (a local mirror, as in CI),
# and e.g. TORCH_INDEX=https://download.pytorch.org/whl/cu124 a CUDA build.
TORCH  ?= torch==2.13.0
TORCH_INDEX ?= https://download.pytorch.org/whl/cpu

.PHONY: reproduce plan test lint readme lab venv export clean-nbs bench docs

# Rewritten only when the dependency lists change: the install below depends on its content, not on pyproject's mtime.
$(DEPS): pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "Python 3.11 is required ($(PYTHON) not found); set PYTHON=/path/to/python3.11"; exit 1; }
	@mkdir -p $(VENV)
	@$(PYTHON) -c 'import json, tomllib; p = tomllib.load(open("pyproject.toml", "rb"))["project"]; \
	  print(json.dumps([p["dependencies"], p.get("optional-dependencies", {}), "$(TORCH)", "$(TORCH_INDEX)"], sort_keys=True, indent=1))' > $(DEPS).new
	@if cmp -s $(DEPS).new $(DEPS); then rm $(DEPS).new; else mv $(DEPS).new $(DEPS); fi

$(STAMP): $(DEPS)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX) --extra-index-url https://pypi.org/simple) "$(TORCH)"
	$(BIN)/pip install --quiet -e ".[dev,reference,cluster]"
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (movierec_nb)" >/dev/null
	touch $(STAMP)

venv: $(STAMP)

# the package is exported again only when a notebook changed
$(EXPORTED): $(STAMP) $(wildcard nbs/*.ipynb)
	$(BIN)/nbdev-export
	@touch $(EXPORTED)

export: $(EXPORTED)

lint: $(STAMP)
	$(BIN)/ruff check movierec_nb tests nbs

# The paper and control chapters (10-15) run in full, every cell and check, through papermill in tests/test_chapters.py;
# nbdev-test runs every other notebook but 00_start_here (real ml-100k, minutes; `make docs` executes it), and a plain
# `nbdev-test` runs them all.
test: export lint
	$(BIN)/nbdev-test --n-workers 2 --skip-file-re '^(1[0-5]_|00_start_here)'
	$(BIN)/python -m pytest -q -n 2 --dist loadgroup --durations 15

readme: export
	$(BIN)/python -m movierec_nb.readme

reproduce: export
	$(BIN)/python -m movierec_nb.reproduce --profile $(PROFILE) --jobs $(JOBS)

plan: export
	$(BIN)/python -m movierec_nb.reproduce --profile $(PROFILE) --jobs $(JOBS) --plan

bench: export
	$(BIN)/python -m movierec_nb.bench

$(LAB): $(STAMP)
	$(BIN)/pip install --quiet -e ".[dev,lab]"
	touch $(LAB)

# --no-browser: the machine may have no screen (open the printed URL); --allow-root where root runs it (e.g. in a container)
lab: $(LAB)
	$(BIN)/jupyter lab nbs/ --no-browser $(if $(filter 0,$(shell id -u)),--allow-root)

$(DOCS): $(STAMP)
	$(BIN)/pip install --quiet -e ".[dev,reference,cluster,docs]"
	touch $(DOCS)

# the library chapters executed, the paper chapters as their committed reports, the API from the docstrings
docs: export $(DOCS)
	$(BIN)/python -m movierec_nb.docs

clean-nbs: $(STAMP)
	$(BIN)/nbdev-clean
