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
# Two workers: the emulated Pico's tests (one group) run beside the rest. TEST_WORKERS=0: one process.
TEST_WORKERS ?= 2
# Requirements without a passing test, and failing tagged tests, fail the safety report (and so
# `make test`). SAFETY_ARGS=--allow-untested lists the gaps without failing, for work in progress.
SAFETY_ARGS ?=

# The emulated Pico's firmware: the official MicroPython v1.28.0 image for RPI_PICO. Without one
# (and without Node.js 18+) the Pico tests skip with a line saying how to get it.
PICO_UF2 ?= $(firstword $(wildcard $(abspath ..)/shared/pico/firmware.uf2))
export PICO_UF2

.PHONY: all demo test bench heap venv clean fuzz powercut safety-report flash mpy pico-soak e2e-phases
SEED ?= 1

all: test

# Node.js packages (rp2040js for the emulated Pico, MicroPython's WebAssembly port for the heap
# rig) go into the project's own node_modules, pinned by package-lock.json. Without Node.js
# the parts that need it skip and say so.
$(VENV)/.ready: requirements.txt pyproject.toml package.json package-lock.json
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	$(PY) -m pip install --quiet --disable-pip-version-check -e .
	@if command -v npm >/dev/null 2>&1; then npm ci --no-audit --no-fund --loglevel=error; \
	else echo "npm not found: the emulated Pico and the 32-bit heap rig need Node.js 18+ (they skip without it)"; fi
	@touch $@

venv: $(VENV)/.ready

demo: $(VENV)/.ready
	$(PY) -m pumpctl.demo

# One pytest run records the safety tags; the report then judges them (docs/safety/). The ten
# slowest tests are listed at the end: where the wall time of `make test` goes.
test: $(VENV)/.ready
	@mkdir -p build
	PYTHONPATH=tests $(PY) -m pytest -q --durations=10 -n $(TEST_WORKERS) --dist loadgroup -p safety_plugin --safety-json build/safety-results.json $(PYTEST_ARGS)
	$(PY) tests/safety_report.py --from-json build/safety-results.json --out docs/safety/traceability.md $(SAFETY_ARGS)

safety-report: $(VENV)/.ready
	@mkdir -p build
	$(PY) tests/safety_report.py --out docs/safety/traceability.md $(SAFETY_ARGS) -- -q $(PYTEST_ARGS)

bench: $(VENV)/.ready
	$(PY) tests/bench/run_bench.py

# A week of therapy inside one heap: 32-bit WebAssembly port (Node.js; the npm package is
# pinned in package.json, installed into node_modules with the venv) and the 64-bit unix port
# (tests/heap/README.md).
heap: $(VENV)/.ready
	$(PY) tests/heap/rig.py

# Long campaigns (a small count of each runs in `make test`); each prints its seed and figures.
powercut: $(VENV)/.ready
	$(MICROPYTHON) tests/powercut/campaign.py --seed $(SEED) --cuts 1000 --days 400

# The end-to-end suite at other start times of the pump's clock than `make test`'s fixed one
# (E2E_PHASES spread over a quarter hour, random milliseconds; E2E_SEED=S repeats them).
E2E_PHASES ?= 6
e2e-phases: $(VENV)/.ready
	$(PY) tests/e2e/phases.py --phases $(E2E_PHASES) $(if $(E2E_SEED),--seed $(E2E_SEED)) -- $(PYTEST_ARGS)

fuzz: $(VENV)/.ready
	$(PY) tests/fuzz/fuzz_link.py --seed $(SEED) --frames 100000
	$(PY) tests/fuzz/attacks.py --hours 10 --tries 20 --cycles 12 --patient 300

# Real hardware: compile with mpy-cross, copy with mpremote, provision keys, reset.
# The emulated Pico works the same: make flash PORT=$$(.venv/bin/pumpctl pico port)
FLASH_ARGS ?=
flash: $(VENV)/.ready
	@test -n "$(PORT)" || (echo "usage: make flash PORT=/dev/ttyACM0   (an emulated Pico: pumpctl pico start prints its port)"; exit 1)
	$(PY) -m pumpctl.flash $(PORT) $(FLASH_ARGS)

# Random power cuts and Ctrl-C on the emulated Pico: PICO_SOAK_ROUNDS rounds (one runs in
# `make test`); PICO_SOAK_SEED=S repeats a campaign.
PICO_SOAK_ROUNDS ?= 30
pico-soak: $(VENV)/.ready
	PYTHONPATH=tests PICO_SOAK=1 PICO_SOAK_ROUNDS=$(PICO_SOAK_ROUNDS) $(PY) -m pytest -q -rA tests/pico/test_soak.py $(PYTEST_ARGS)

mpy: $(VENV)/.ready
	$(PY) -m pumpctl.flash --build-only

clean:
	rm -rf build .pytest_cache .bench
