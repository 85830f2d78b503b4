# The two setup commands of the README: `make demo` (the main job) and `make test`.
# Both create a virtual environment inside the checkout and install what they need.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

# Point the dataset cache at the real Census-Income file beside the checkout, unless set already.
SHARED_CENSUS := $(abspath ../shared/data/census-income-kdd)
ifneq ($(wildcard $(SHARED_CENSUS)/census-income.test.gz),)
export NOMORETUNING_CACHE ?= $(SHARED_CENSUS)
endif

.PHONY: demo test lint typecheck venv clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	# torch first, pinned, so pip does not pull a multi-GB CUDA build; the package itself asks for torch>=2.3.
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(BIN)/python -m nomoretuning demo

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/python -m pytest -n 2 -q

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

clean:
	rm -rf $(VENV) build dist src/*.egg-info .pytest_cache .mypy_cache .ruff_cache
