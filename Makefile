# Two commands on a fresh clone:  `make demo`  and  `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
SHARED ?= ../shared/data

.PHONY: demo test install default-model benchmark clean

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

test: $(VENV)/.installed-test
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest -q

## Retrain the embedded default detector from the training part of ../shared/data and rewrite its model card.
default-model: $(VENV)/.installed-test
	$(BIN)/python scripts/train_default.py --shared $(SHARED)

benchmark: $(VENV)/.installed-test
	$(BIN)/python benchmarks/scan_throughput.py

clean:
	rm -rf $(VENV) .demo build dist src/*.egg-info
