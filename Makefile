# The README's commands. Every target sets up .venv itself, so a fresh clone needs nothing else.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8501
GRPC_PORT ?= 8500
MODEL_REPOSITORY ?= models
MNIST_DIR ?= ../shared/data/mnist
export HOST PORT GRPC_PORT MODEL_REPOSITORY MNIST_DIR

# The token file `make serve` reads (README "Security"); empty: no auth, for loopback use.
AUTH_TOKENS_FILE ?=

.PHONY: serve test test-fast train bench soak lint typecheck evaluate evaluate-offline compose-secrets clean

# Stamps re-run the install whenever pyproject.toml changes.
$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

# TF Serving's generated gRPC API. Its wheel requires `tensorflow`, which would install a second,
# full TensorFlow beside tensorflow-cpu; its modules need only the protos tensorflow-cpu ships. So
# it goes in alone, at the installed TensorFlow's minor version (service/grpc/generated.py checks).
TF_MINOR = $$($(BIN)/python -c 'from importlib.metadata import version; print(*version("tensorflow-cpu").split(".")[:2], sep=".")')

$(VENV)/.installed: $(BIN)/python pyproject.toml
	$(BIN)/pip install -q -e .
	$(BIN)/pip install -q --no-deps "tensorflow-serving-api==$(TF_MINOR).*"
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed
	$(BIN)/pip install -q -e '.[dev]'
	touch $@

serve: $(VENV)/.installed
	AUTH_TOKENS_FILE='$(AUTH_TOKENS_FILE)' $(BIN)/python -m service --host $(HOST) --port $(PORT) --model-repository $(MODEL_REPOSITORY)

test: $(VENV)/.installed-dev
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test-fast: $(VENV)/.installed-dev
	$(BIN)/python -m pytest -m "not slow" $(PYTEST_ARGS)

train: $(VENV)/.installed
	$(BIN)/python -m training all --output $(MODEL_REPOSITORY) --data $(MNIST_DIR)

# Batch evaluation of the committed mnist model on MNIST_DIR: against a running `make serve`, or offline.
EVAL_MODEL ?= mnist
EVAL_SERVER ?= http://$(HOST):$(PORT)
EVAL_ARGS ?=
evaluate: $(VENV)/.installed
	$(BIN)/python -m service.evaluation.batch --model $(EVAL_MODEL) --data $(MNIST_DIR) --server $(EVAL_SERVER) --output reports/$(EVAL_MODEL) $(EVAL_ARGS)

evaluate-offline: $(VENV)/.installed
	$(BIN)/python -m service.evaluation.batch --model $(EVAL_MODEL) --data $(MNIST_DIR) --offline --model-repository $(MODEL_REPOSITORY) --output reports/$(EVAL_MODEL) $(EVAL_ARGS)

# docker-compose.yml's secrets in ./secrets (gitignored): the token file and one token per client.
# Idempotent: tokens that still work are kept; an ops token is printed the first time only.
compose-secrets: $(VENV)/.installed
	$(BIN)/python deploy/compose_secrets.py secrets

bench: $(VENV)/.installed-dev
	$(BIN)/python -m benchmarks.run --model-repository $(MODEL_REPOSITORY) --output docs/benchmarks.md

# The fault suite (not part of test): SOAK_SECONDS of mixed valid and hostile traffic, a worker
# SIGKILL, a corrupt new version and a SIGTERM against a copy of MODEL_REPOSITORY (docs/reliability.md).
SOAK_SECONDS ?= 180
soak: $(VENV)/.installed-dev
	$(BIN)/python -m benchmarks.soak --seconds $(SOAK_SECONDS) --model-repository $(MODEL_REPOSITORY)

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check service training tests benchmarks
	$(BIN)/ruff format --check service training tests benchmarks

typecheck: $(VENV)/.installed-dev
	$(BIN)/mypy

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
