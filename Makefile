# Two commands on a fresh clone:  `make demo`  and  `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
SHARED ?= ../shared/data

.PHONY: demo test install default-model benchmark chromium serve clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

# Reinstall only when the package metadata changes.
$(VENV)/.installed-demo: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e ".[demo]"
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e ".[test]"
	touch $@

install: $(VENV)/.installed-demo

## Scan sample images with the embedded default detector: the test-only examples in ../shared/data when present,
## else the real photographs scikit-image ships.
demo: $(VENV)/.installed-demo
	$(BIN)/gendetect model
	$(BIN)/gendetect scan $$($(BIN)/python scripts/demo_images.py --shared $(SHARED))

# The browser test drives Debian's chromium; install it when missing (skipped with a reason if that fails).
chromium:
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || \
	  ( (apt-get install -y -q chromium >/dev/null 2>&1 || \
	     (apt-get update -q >/dev/null 2>&1 && apt-get install -y -q chromium >/dev/null 2>&1)) && echo "installed chromium" ) || \
	  echo "could not install chromium (not root?): the browser test will be skipped"

test: $(VENV)/.installed-test chromium
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest -q

## Retrain the embedded default detector from the training part of ../shared/data and rewrite its model card.
default-model: $(VENV)/.installed-test
	$(BIN)/python scripts/train_default.py --shared $(SHARED)

benchmark: $(VENV)/.installed-test
	$(BIN)/python benchmarks/scan_throughput.py
	$(BIN)/python benchmarks/serve_load.py

serve: $(VENV)/.installed-test
	$(BIN)/gendetect serve

clean:
	rm -rf $(VENV) .demo build dist src/*.egg-info
