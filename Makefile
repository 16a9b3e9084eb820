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

# A cluster profile (profiles/PROFILE: slurm, kubernetes) on a preset, after checking
# that its Snakemake plugins are installed (else one line naming the pip install):
#   make cluster PROFILE=slurm CONFIG=config/paper-cifar100.yaml
PROFILE ?=
.PHONY: cluster
cluster: $(STAMP)
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/msdnet cluster "$(PROFILE)" figures --configfile "$(CONFIG)"

test: $(STAMP)
	$(BIN)/python -m pytest -q

clean:
	rm -rf results figures .pytest_cache

# Browse the executed notebooks of a preset (results/<preset>/notebooks/: overview and budget
# explorer, written by `make figures`) in JupyterLab, with the venv's jupyter and kernel.
# PRESET defaults to the preset of CONFIG (mini): `make lab PRESET=tiny`, or
# `make lab CONFIG=config/paper-cifar100.yaml`. JupyterLab opens a browser as it always does; on a
# server: `make lab LAB_ARGS=--no-browser` (or LAB_ARGS="--no-browser --port 8899"; as root in a
# container add --allow-root) and open the printed URL, e.g. through `ssh -L 8888:localhost:8888 HOST`. Each .ipynb there is paired with a
# jupytext .py (saving one updates both; `jupytext --sync FILE` from a shell); the sources are
# notebooks/*.py.
PRESET       ?= $(or $(shell sed -n -E "s/^preset:[[:space:]]*[\"']?([A-Za-z0-9_.-]+).*/\1/p" $(CONFIG) 2>/dev/null),mini)
LAB_ARGS     ?=
NOTEBOOK_DIR  = results/$(PRESET)/notebooks
.PHONY: lab notebooks
lab: $(STAMP)
	@test -d "$(NOTEBOOK_DIR)" || { echo "no $(NOTEBOOK_DIR) yet: run 'make figures CONFIG=...' first (it executes the notebooks)" >&2; exit 1; }
	$(BIN)/jupyter lab --ServerApp.root_dir="$(NOTEBOOK_DIR)" $(LAB_ARGS)

notebooks: lab
