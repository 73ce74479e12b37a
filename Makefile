# Two entry points, each working on a fresh Debian machine from a clean clone:
#   make demo   set everything up and run the main job (the pipeline) into models/fashion-cnn
#   make test   set everything up and run the test suite
PYTHON ?= python3
APT_PACKAGES = dataset-fashion-mnist graphviz chromium chromium-driver
PIP = $(PYTHON) -m pip install --quiet --disable-pip-version-check --root-user-action=ignore

.PHONY: setup system-packages python-packages node-packages demo test test-fast

setup: system-packages python-packages node-packages

system-packages:
	@if command -v apt-get >/dev/null 2>&1; then \
	  missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	  if [ -n "$$missing" ]; then \
	    SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	    $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $$missing; \
	  fi; \
	else echo "apt-get not found: install Fashion-MNIST (or set EDGECNN_DATA_DIR), Graphviz and Chromium yourself"; fi

python-packages:
	$(PIP) -e '.[train,dev]'

# onnxruntime-web for `edgecnn web`, pinned in package.json / package-lock.json
node-packages:
	@command -v npm >/dev/null 2>&1 || { echo "npm not found: install Node.js 20+ and npm (edgecnn web needs onnxruntime-web)"; exit 1; }
	npm ci --no-audit --no-fund

demo: setup
	$(PYTHON) -m edgecnn pipeline

test: setup
	$(PYTHON) -m pytest -q -ra

test-fast:
	$(PYTHON) -m pytest -q -ra -m "not e2e and not browser"
