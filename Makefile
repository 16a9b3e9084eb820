# The two commands of the README: `make figures` (main job on the embedded default) and `make test`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: setup figures test clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

# Until the Snakemake workflow lands, the main job trains, records and evaluates the
# default MSDNet on the embedded digits data.
RUN := results/mini/msdnet-digits/seed0
figures: $(STAMP)
	$(BIN)/msdnet train config/models/msdnet-digits.yaml --recipe config/recipes/digits.yaml --out $(RUN)
	$(BIN)/msdnet predict $(RUN)/checkpoint.pt --out-dir $(RUN)/predictions
	$(BIN)/msdnet cost config/models/msdnet-digits.yaml
	$(BIN)/msdnet anytime --test $(RUN)/predictions/test.npz

test: $(STAMP)
	$(BIN)/python -m pytest -q

clean:
	rm -rf results figures .pytest_cache
