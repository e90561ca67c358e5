# EIFER live: two commands for a newcomer: `make demo` and `make test`.
# Both create (once) and reuse the virtual environment in .venv.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
PYTEST := $(PY) -m pytest

.PHONY: demo test test-slow lint format bench system clean face-models

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[dev]'
	$(PY) -m eifer_models.face_detection.models
	touch $@

# MediaPipe's face models (BlazeFace, Face Mesh, Iris), taken from the mediapipe wheel through
# the package index (pip download --no-deps; mediapipe itself is never installed).
face-models: $(STAMP)
	$(PY) -m eifer_models.face_detection.models

# System libraries the tests need: libusb for pyrealsense2, Chromium for the display tests,
# iproute2 and libfaketime for the multi-host rig (tests/multihost: namespaces, drifting clocks).
system:
	@missing=""; \
	ldconfig -p | grep -q libusb-1.0 || missing="$$missing libusb-1.0-0"; \
	command -v chromium >/dev/null || missing="$$missing chromium"; \
	command -v ip >/dev/null || missing="$$missing iproute2"; \
	ls /usr/lib/*/faketime/libfaketimeMT.so.1 >/dev/null 2>&1 || missing="$$missing faketime"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing system packages:$$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  else \
	    echo "missing system packages:$$missing (install them with apt-get as root)"; exit 1; \
	  fi; \
	fi

demo: $(STAMP)
	$(VENV)/bin/eifer demo

test: $(STAMP) system
	$(PYTEST)

# The slow tier (long recordings, soak tests); CI runs it after `make test`.
test-slow: $(STAMP) system
	$(PYTEST) -m slow; rc=$$?; [ $$rc -eq 0 ] || [ $$rc -eq 5 ]

# ruff (lint and format) and mypy (configured in pyproject.toml's [tool.mypy]: streaming,
# eifer_models, simulation, training, nodes).
lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

format: $(STAMP)
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

bench: $(STAMP)
	$(PY) -m benchmarks

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache *.egg-info
