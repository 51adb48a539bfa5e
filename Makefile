# Herald: the two commands are `make run` and `make test`.
PYTHON ?= python3
UV_VERSION := 0.13.9
TOOLS := .tools
UV := $(TOOLS)/bin/uv
VENV := .venv
export UV_PYTHON_DOWNLOADS := never
export UV_PROJECT_ENVIRONMENT := $(VENV)

.PHONY: install run test

$(UV):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet "uv==$(UV_VERSION)"

# The locked dependencies, exactly (uv.lock).
install: $(UV)
	$(UV) sync --frozen --compile-bytecode --python $(PYTHON) --quiet

run: install
	$(VENV)/bin/python devrun.py

# Browser tests drive Debian's Chromium (never a downloaded browser). Two pytest-xdist workers: most tests wait
# on servers and timers, so two of them share the two cores well (about 6.5 minutes instead of 11).
test: install
	@command -v chromium >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }
	$(VENV)/bin/python -m pytest -n 2
