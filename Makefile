# natexp: two commands on a fresh machine with Python 3.11 and make.
#   make run    set up .venv and run the default experiment on the embedded synthetic data
#   make test   set up .venv and run every test
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.natexp-installed

.PHONY: setup sysdeps run test lint bench clean

setup: $(STAMP)

# The pinned packages go in with uv (from PyPI, into .venv): the same packages as pip installs,
# in about half its time on a fresh machine (bench/README.md, "Setup time"). Where uv cannot
# (no uv wheel for the platform, or PyPI unreachable and only a mirror in pip's own settings,
# which uv does not read), pip installs them. --compile-bytecode: as pip does, so that the
# processes the tests start read bytecode even where PYTHONDONTWRITEBYTECODE is set.
UV_VERSION := 0.13.9

$(STAMP): pyproject.toml setup.py requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	if $(BIN)/python -m pip install --quiet uv==$(UV_VERSION) && $(BIN)/uv pip install \
	    --quiet --python $(BIN)/python --compile-bytecode -c requirements.lock -e '.[dev]'; \
	then :; else \
	    echo "setup: uv could not install the packages; pip installs them"; \
	    $(BIN)/python -m pip install --quiet -c requirements.lock -e '.[dev]'; \
	fi
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/python -m natexp run +experiment=oxon_vs_rest

# System packages pip cannot provide (Chromium for the browser test of the HTML report).
sysdeps:
	sh scripts/install-system-deps.sh

# compileall: natexp's bytecode, so the ~100 natexp processes the tests start read it instead of
# compiling natexp's source each time (even where PYTHONDONTWRITEBYTECODE is set, as on the
# development machines); a no-op when it is up to date.
test: $(STAMP) sysdeps
	$(BIN)/python -m compileall -q natexp
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check natexp tests bench

clean:
	rm -rf $(VENV) outputs multirun .pytest_cache build natexp.egg-info
