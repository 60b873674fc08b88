# One entry point for a fresh clone: every target sets the virtualenv up when it is missing.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.hfkdq-installed
# Nothing in tests or the demo may reach the Hugging Face Hub.
OFFLINE := HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_DATASETS_OFFLINE=1 HF_HUB_DISABLE_TELEMETRY=1 TOKENIZERS_PARALLELISM=false

.PHONY: setup test demo lint clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# The CPU wheel first: an unpinned torch would pull a multi-GB CUDA build.
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e ".[dev]"
	touch $(STAMP)

test: setup
	$(OFFLINE) $(PY) -m pytest -q -rs tests

demo: setup
	$(OFFLINE) $(PY) recipes/distill_bert_ner.py recipes/configs/ner_btc_minilm.yaml

lint: setup
	$(VENV)/bin/ruff check hfkdq recipes tests benchmarks
	$(VENV)/bin/ruff format --check hfkdq recipes tests benchmarks

clean:
	rm -rf $(VENV) outputs build dist *.egg-info .pytest_cache .ruff_cache
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
