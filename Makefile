# The two commands of the README: `make figures` (main job on the embedded default) and `make test`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: setup figures repro test clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

# The main job: every figure and the executed notebook of a preset (default: the embedded
# digits preset, config/config.yaml). Another preset: make figures CONFIG=config/paper-cifar100.yaml
CONFIG ?= config/config.yaml
CORES  ?= 2
figures: $(STAMP)
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/snakemake figures --cores $(CORES) --configfile $(CONFIG)

# The same DAG through DVC (stages over Snakemake targets; dvc.lock records the hashes).
repro: $(STAMP)
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/dvc repro

test: $(STAMP)
	$(BIN)/python -m pytest -q

clean:
	rm -rf results figures .pytest_cache
