# Two commands set everything up on a fresh machine:
#   make demo   - base install only (no torch), classify samples/ with the embedded model
#   make test   - full install ([train,dev]), real FashionMNIST, lint, the whole test suite,
#                 then the torch-free tests again in an environment without torch
PYTHON ?= python3
BASE_VENV := .venv-base
LIGHT_VENV := .venv-light
LIGHT_PASSED := .venv-light/passed.txt
VENV := .venv
DATA_DEB := /usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz
SOURCES := pyproject.toml $(shell find src -name '*.py' -o -name '*.onnx')
# The ONNX Runtime build: CUDA where nvidia-smi lists a GPU, else the small CPU one.
RUNTIME ?= $(shell nvidia-smi -L 2>/dev/null | grep -q '^GPU' && echo gpu || echo cpu)
# Fails unless exactly one of onnxruntime / onnxruntime-gpu is in the venv ($1).
ONE_RUNTIME = $1/bin/python -c "import importlib.metadata as m, sys; \
	found = [d for d in ('onnxruntime', 'onnxruntime-gpu') if any(True for _ in m.distributions(name=d))]; \
	print('ONNX Runtime in $1:', found); sys.exit(len(found) != 1)"

.PHONY: demo test test-fast test-light lint data browser wrk js model model-mlp model-cnn model-plots photo-models bench web clean

$(BASE_VENV)/.installed: $(SOURCES)
	$(PYTHON) -m venv $(BASE_VENV)
	$(BASE_VENV)/bin/pip install --quiet --upgrade pip
	$(BASE_VENV)/bin/pip install --quiet '.[$(RUNTIME)]'
	$(call ONE_RUNTIME,$(BASE_VENV))
	touch $@

demo: $(BASE_VENV)/.installed
	@$(BASE_VENV)/bin/python -c "import importlib.util as u; print('torch installed:', u.find_spec('torch') is not None)"
	$(BASE_VENV)/bin/fashion-infer samples/ --labels samples/labels.csv

# pip byte-compiles the 20,886 modules of torch, Ray and the rest one after the other (90 s
# here); compileall does it on every core (51 s on 2). The modules must be compiled: where
# PYTHONDONTWRITEBYTECODE is set, every test process would compile what it imports again.
# A module that does not compile is left as pip leaves it (torch ships one for Python 3.12
# only), hence the status ignored.
COMPILE = $1/bin/python -m compileall -q -j 0 $1/lib > /dev/null || true
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet --no-compile -e '.[train,dev,ray,serve,$(RUNTIME)]'
	$(call COMPILE,$(VENV))
	$(call ONE_RUNTIME,$(VENV))
	touch $@

# Real FashionMNIST from Debian's package (root installs it; others are told how).
data:
	@if [ -f $(DATA_DEB) ]; then :; \
	elif [ "$$(id -u)" = 0 ]; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dataset-fashion-mnist && apt-get clean; \
	else \
		echo "FashionMNIST is missing. Run: sudo apt-get install dataset-fashion-mnist"; exit 2; \
	fi

# Debian's Chromium for the browser test (Playwright drives it; no browser download).
browser:
	@if [ -x /usr/bin/chromium ]; then :; \
	elif [ "$$(id -u)" = 0 ]; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium && apt-get clean; \
	else \
		echo "Chromium is missing. Run: sudo apt-get install chromium"; exit 2; \
	fi

# Debian's wrk, the load generator of the bench's Serving section.
wrk:
	@if command -v wrk >/dev/null; then :; \
	elif [ "$$(id -u)" = 0 ]; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk && apt-get clean; \
	else \
		echo "wrk is missing. Run: sudo apt-get install wrk"; exit 2; \
	fi

# npm packages of the Node example and the web page, from their lock files.
# onnxruntime-node's install script would fetch CUDA binaries; its CPU ones ship inside.
examples/node/node_modules/.installed: examples/node/package-lock.json
	cd examples/node && ONNXRUNTIME_NODE_INSTALL=skip npm ci --no-audit --no-fund --ignore-scripts
	touch $@
web/node_modules/.installed: web/package-lock.json
	cd web && npm ci --no-audit --no-fund --ignore-scripts
	touch $@
js: examples/node/node_modules/.installed web/node_modules/.installed

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check src tests bench scripts
	$(VENV)/bin/ruff format --check src tests bench scripts
	$(VENV)/bin/mypy

# Every test once, each in the leanest environment that runs it: the torch-free tests in
# the environment without torch first (test-light), then the full environment runs the
# rest (what needs torch, Ray or the browser; the slow tests; test_resume.py). The light
# tests run while the full environment installs (pip mostly waits on the disk): on 2 CPUs
# that takes about 5 minutes off CI. The rest run on every CPU (pytest-xdist, a test file
# per worker: tests/conftest.py); one at a time they kept a CPU idle half the time.
test: data browser js
	$(MAKE) -j2 test-light $(VENV)/.installed
	$(MAKE) lint
	$(VENV)/bin/python -m pytest -n auto --maxprocesses=4 --durations=15 --skip-passed=$(LIGHT_PASSED)

# Everything but the tests marked slow (benchmark smoke run, browser).
test-fast: $(VENV)/.installed data js
	$(VENV)/bin/python -m pytest -m "not slow"

# The torch-free tests in an environment without torch: the base install plus the test
# tools and the server. Tests that need torch skip themselves there, and pytest says which;
# the ids of those that pass go to $(LIGHT_PASSED), which `make test` does not run again.
# The slow ones (browser, Ray clusters, the bench smoke run) run in the full environment,
# so this one goes without Ray (700 MB, minutes of CI time to install twice).
# test_resume.py too (a minute of real signals sent to real runs; the journal is the same
# code whatever the runtime) runs there only, once.
$(LIGHT_VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(LIGHT_VENV)
	$(LIGHT_VENV)/bin/pip install --quiet --upgrade pip
	$(LIGHT_VENV)/bin/pip install --quiet --no-compile -e '.[test,serve,$(RUNTIME)]'
	$(call COMPILE,$(LIGHT_VENV))
	$(call ONE_RUNTIME,$(LIGHT_VENV))
	touch $@
test-light: $(LIGHT_VENV)/.installed data browser js
	@$(LIGHT_VENV)/bin/python -c "import importlib.util as u, sys; sys.exit(u.find_spec('torch') is not None)" \
		|| { echo "torch is installed in $(LIGHT_VENV); it must not be"; exit 1; }
	$(LIGHT_VENV)/bin/python -m pytest -m "not slow" --ignore=tests/test_resume.py \
		--record-passed=$(LIGHT_PASSED)

# Rebuild the embedded model from scratch: train with the default recipe (seed 0),
# then export and verify it into the package, with its photo model (NAME_photo.onnx).
# They replace the committed files on purpose, hence --force.
model: model-mlp model-cnn
model-mlp: $(VENV)/.installed data
	$(VENV)/bin/fashion-train --seed 0 -o models/fashion_mlp.pth --plots models/plots --force
	$(VENV)/bin/fashion-export models/fashion_mlp.pth -o src/fashion_onnx/assets/fashion_mlp.onnx --photo --force --json > models/fashion_mlp.export.json
model-cnn: $(VENV)/.installed data
	$(VENV)/bin/fashion-train --arch cnn --seed 0 -o models/fashion_cnn.pth --plots models/plots-cnn --force
	$(VENV)/bin/fashion-export models/fashion_cnn.pth -o src/fashion_onnx/assets/fashion_cnn.onnx --photo --force --json > models/fashion_cnn.export.json
# Only the photo models, from the committed plain ones (which stay byte for byte): after a
# change to the photo preparation. The same build and check as fashion-export --photo.
photo-models: $(VENV)/.installed data
	$(VENV)/bin/python scripts/photo_models.py
# Redraw the committed plots with today's code from the committed runs, without training.
model-plots: $(VENV)/.installed data
	$(VENV)/bin/python scripts/replot.py models/fashion_mlp.pth models/plots
	$(VENV)/bin/python scripts/replot.py models/fashion_cnn.pth models/plots-cnn

# Byte-compiled first, as pip leaves an installed package (an editable one is compiled on
# first import, or on every start where PYTHONDONTWRITEBYTECODE is set).
bench: $(VENV)/.installed data wrk
	$(VENV)/bin/python -m compileall -q src
	$(VENV)/bin/python -m bench

# Serve the page at http://localhost:8000/web/ (the repository root, for the model file).
web: web/node_modules/.installed
	$(PYTHON) -m http.server 8000 --bind 127.0.0.1

clean:
	rm -rf $(VENV) $(BASE_VENV) $(LIGHT_VENV) build *.egg-info examples/node/node_modules web/node_modules
