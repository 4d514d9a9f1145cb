# One place for the commands README and .ci/run use.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
# The CPU wheel of torch that lies on these machines' disk; elsewhere pip takes it from PyPI.
TORCH_PIN ?= torch==2.13.0

.PHONY: setup demo test bench lint clean

$(BIN)/genrec: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q "$(TORCH_PIN)"
	$(BIN)/pip install -q -e ".[dev]"
	touch $(BIN)/genrec

setup: $(BIN)/genrec

demo: setup
	$(BIN)/genrec demo

test: setup
	$(BIN)/python -m pytest tests

bench: setup
	$(BIN)/python bench/data_stats.py

lint: setup
	$(BIN)/ruff check .

clean:
	rm -rf $(VENV) runs .pytest_cache
