# Everything runs from a virtual environment that the targets make themselves, so a fresh
# clone needs only Python 3.11+ and make.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
RUN_STAMP := $(VENV)/.installed-run
# `make run ARGS="--allow-private-urls --allowed-schemes http,https"` passes flags on.
ARGS ?=

# `make generate OUT=dir` writes elsewhere; the test that checks generated/ is current uses it.
OUT ?= generated
PROTOS := $(shell cd protos && find . -name '*.proto' | sed 's|^\./||' | sort)

.PHONY: run test generate lint bench clean chromium

$(BIN)/python:
	$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
		(echo "Python 3.11 or newer is needed (set PYTHON=python3.x)" >&2; exit 1)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Everything the tests, the linters and `make generate` need.
$(STAMP): setup.cfg pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP) $(RUN_STAMP)

# Only what serving needs, with pip's progress shown: the first `make run` takes a minute.
$(RUN_STAMP): setup.cfg pyproject.toml | $(BIN)/python
	@echo "Installing the server's dependencies into $(VENV) ..."
	$(BIN)/python -m pip install --progress-bar on -e .
	touch $(RUN_STAMP)

run: $(RUN_STAMP)
	$(BIN)/webhooks-server $(ARGS)

# protoc names imports after the .proto paths ("import databricks_pb2"); the sed makes them
# package imports so `from mlflow_webhooks.generated import webhooks_pb2` works without sys.path
# changes.
generate: $(STAMP)
	find $(OUT) -name '*_pb2*.py*' -delete
	$(BIN)/python -m grpc_tools.protoc -Iprotos \
		--python_out=$(OUT) --pyi_out=$(OUT) --grpc_python_out=$(OUT) \
		$(addprefix protos/,$(PROTOS))
	find $(OUT) -name '*_pb2*.py*' | xargs sed -i -E \
		-e 's/^import ([a-z_]+_pb2) as/from mlflow_webhooks.generated import \1 as/' \
		-e 's/^from (scalapb) import/from mlflow_webhooks.generated.\1 import/'

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# The web console's tests drive Debian's chromium through Playwright (never a browser of
# Playwright's own download); installed here when missing, which needs root.
chromium:
	command -v chromium >/dev/null 2>&1 || (apt-get update && apt-get install -y chromium)

# The MLflow server tests run from a venv with the full MLflow package, cached outside the
# clone (tests/mlflow_env.py); it is made here, before any test's timeout runs.
# The egress tests resolve names through nss_wrapper (tests/test_egress.py); as root on
# Debian or Ubuntu it is installed here, elsewhere those tests say how to install it.
test: $(STAMP) chromium
	$(BIN)/ruff check .
	@if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && ! dpkg -s libnss-wrapper >/dev/null 2>&1; then \
		apt-get update -qq && apt-get install -y -qq libnss-wrapper >/dev/null; fi
	$(BIN)/python -m tests.mlflow_env
	$(BIN)/python -m pytest -q

bench: $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[bench]'
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) *.egg-info
