# Two entry points, each working on a fresh Debian machine from a clean clone:
#   make demo   set everything up and run the main job (the pipeline) into models/fashion-cnn
#   make test   set everything up and run the test suite
# Everything Python runs in the project venv .venv/, made by $(PYTHON) (make test PYTHON=/usr/bin/python3).
PYTHON ?= python3
VENV = .venv
VPY = $(VENV)/bin/python
INSTALLED = $(VENV)/.installed
APT_PACKAGES = dataset-fashion-mnist graphviz chromium chromium-driver python3-venv debootstrap
# QEMU 10 or later (user mode, static): Debian 12's own 7.2 emulates the SME instructions of `-cpu max` wrong.
# Debian 12 gets it from bookworm-backports, later releases from their own archive.
QEMU_PACKAGES = qemu-user qemu-user-static
QEMU_OK = qemu-aarch64-static --version 2>/dev/null | grep -Eq 'version [1-9][0-9]+\.'
PIP = $(VPY) -m pip install --quiet --disable-pip-version-check
# pytest-xdist workers; --dist loadfile keeps a test file's module fixtures in one worker
TEST_WORKERS ?= 2
PYTEST = $(VPY) -m pytest -q -ra -n $(TEST_WORKERS) --dist loadfile

NODE_INSTALLED = node_modules/.installed

.PHONY: setup system-packages demo test test-fast test-slow clean-venv FORCE

setup: system-packages $(INSTALLED) $(NODE_INSTALLED)

system-packages:
	@if command -v apt-get >/dev/null 2>&1; then \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	  if [ -n "$$missing" ]; then \
	    $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $$missing || exit 1; \
	  fi; \
	  if ! $(QEMU_OK); then \
	    target=""; \
	    if grep -q '^VERSION_CODENAME=bookworm' /etc/os-release 2>/dev/null; then \
	      echo 'deb http://deb.debian.org/debian bookworm-backports main' | $$SUDO tee /etc/apt/sources.list.d/edgecnn-backports.list >/dev/null; \
	      target="-t bookworm-backports"; \
	    fi; \
	    $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $$target $(QEMU_PACKAGES) || exit 1; \
	    $(QEMU_OK) || { echo "qemu-user-static 10 or later is needed (this one: $$(qemu-aarch64-static --version | head -1))"; exit 1; }; \
	  fi; \
	else echo "apt-get not found: install Fashion-MNIST (or set EDGECNN_DATA_DIR), Graphviz, Chromium, Python's venv, debootstrap and qemu-user-static 10+ yourself"; fi

# (Re)made when missing, broken, or made by another interpreter than $(PYTHON); untouched otherwise.
$(VENV)/pyvenv.cfg: FORCE | system-packages
	@want=$$($(PYTHON) -c 'import sys; print(sys.base_prefix, sys.version)') || exit 1; \
	have=$$($(VPY) -c 'import sys; print(sys.base_prefix, sys.version)' 2>/dev/null); \
	if [ "$$have" != "$$want" ]; then \
	  echo "$(PYTHON) -m venv --clear $(VENV)"; $(PYTHON) -m venv --clear $(VENV); \
	fi

$(INSTALLED): $(VENV)/pyvenv.cfg setup.cfg pyproject.toml
	$(PIP) -e '.[train,dev,ray,parquet]'
	@touch $@

# onnxruntime-web for `edgecnn web`, pinned in package.json / package-lock.json; reinstalled when the lock changes
$(NODE_INSTALLED): package.json package-lock.json
	@command -v npm >/dev/null 2>&1 || { echo "npm not found: install Node.js 20+ and npm (edgecnn web needs onnxruntime-web)"; exit 1; }
	npm ci --no-audit --no-fund
	@touch $@

demo: setup
	$(VPY) -m edgecnn pipeline

test: setup
	$(PYTEST) -m "not slow"

test-fast: $(INSTALLED)
	$(PYTEST) -m "not e2e and not browser"

# the largest architectures through every format (about 7 minutes on 2 cores)
test-slow: $(INSTALLED)
	$(PYTEST) -m slow

clean-venv:
	rm -rf $(VENV)

FORCE:
