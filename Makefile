# The two commands of the README:
#   make demo   set up .venv, then prepare -> train -> eval -> transcribe on the bundled demo corpus
#   make test   set up .venv with the dev extra, then run the test suite (what CI runs)
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
DEMO_DATA := data/demo
DEMO_EXP := exp/demo
DEMO_WAV := recipes/demo/corpus/test/101/3/101-3-0000.flac

.PHONY: demo test lint bench setup

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@ $(VENV)/.installed

setup: $(VENV)/.installed

demo: $(VENV)/.installed
	$(BIN)/asr prepare recipes/demo/corpus --out $(DEMO_DATA) --config configs/demo.yaml
	$(BIN)/asr train --config configs/demo.yaml --data $(DEMO_DATA) --out $(DEMO_EXP) --overwrite
	$(BIN)/asr eval --model $(DEMO_EXP)/bundle --data $(DEMO_DATA) --split test --report $(DEMO_EXP)/report.json
	@echo "reference:  $$(grep -h "^101-3-0000 " recipes/demo/corpus/test/101/3/101-3.trans.txt | cut -d' ' -f2- | tr A-Z a-z)"
	@echo "transcript: $$($(BIN)/asr transcribe -m $(DEMO_EXP)/bundle $(DEMO_WAV))"

# The fast tier first (pytest's default deselects `slow`; on every core), then the slow integration tier: kill -9 and resume,
# mirrored and multi-worker training, every recipe's run.sh, the docs' commands.
test: $(VENV)/.installed-dev
	$(BIN)/python -m pytest -q
	$(BIN)/python -m pytest -q -m slow -n 0  # one process: kill -9 timing, TF clusters on local ports

# Measured numbers (minutes on 2 cores): prepare, training, decoding and transcription speed.
bench: $(VENV)/.installed
	$(BIN)/python scripts/bench_prepare.py --minutes 360 --shard-size 50
	$(BIN)/python scripts/bench_train.py
	$(BIN)/python scripts/bench_decode.py --bundle $(DEMO_EXP)/bundle
	$(BIN)/python scripts/bench_transcribe.py --bundle $(DEMO_EXP)/bundle --default-model
	$(BIN)/python scripts/bench_transcribe.py --memory --latency

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check asr tests scripts recipes
	$(BIN)/mypy
