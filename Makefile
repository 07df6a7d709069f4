# A thin front for people and CI; pyproject.toml is the source of truth for the package.
# `make run` and `make test` work on a fresh Debian machine: they create .venv, install the
# system library python-lzo builds against (liblzo2-dev) when running as root, and install
# the package with its test dependencies.  PKG_CONFIG_LIBDIR=/nonexistent: lz4 0.19.1 is built
# from source and would link the system liblz4 if pkg-config found one; it must use the
# liblz4 1.8.0 it bundles (the kernel's sizes; README "Pinned compressor libraries").

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
LZO_HEADER := /usr/include/lzo/lzo1x.h

.PHONY: run test lint bench liblzo venv clean kernel-check native

run: $(STAMP)
	$(BIN)/xcfbench run --alloc xcf --fill text

test: lint
	$(BIN)/python -m pytest -q

# ruff (rules E, F, W, I, B, UP; its formatter) and mypy, installed into the virtualenv.
lint: $(STAMP)
	$(BIN)/ruff check xcfbench tests
	$(BIN)/ruff format --check xcfbench tests
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/python -m xcfbench.cli.bench

# Opt-in, root only, not part of `test` or CI: replays page traces into a zram device it
# creates itself (hot_add), compares mm_stat with the model, then resets and removes it.
kernel-check: $(STAMP)
	$(BIN)/python -m xcfbench.cli.kernelcheck $(KERNEL_CHECK_ARGS)

# python-lzo compiles against liblzo2's headers.  Install them where we can (root with
# apt-get); otherwise stop and say exactly what to run.
liblzo:
	@if [ -f $(LZO_HEADER) ] || $(BIN)/python -c 'import lzo' 2>/dev/null; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "installing liblzo2-dev (python-lzo builds against it)"; \
		(apt-get install -y -q liblzo2-dev || \
		 (apt-get update -q && apt-get install -y -q liblzo2-dev)) >/dev/null || exit 1; \
	else \
		echo "liblzo2-dev is missing; python-lzo needs it. Run: sudo apt-get install liblzo2-dev" >&2; \
		exit 1; \
	fi

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml setup.py xcfbench/sim/compressors/_lzokernel.c $(wildcard xcfbench/sim/native/*.[ch]) | $(BIN)/python
	@$(MAKE) --no-print-directory liblzo
	$(BIN)/python -m pip install -q --upgrade pip
	PKG_CONFIG_LIBDIR=/nonexistent $(BIN)/python -m pip install -q -e '.[test,lint,cluster]'
	@touch $@

venv: $(STAMP)

# Rebuild the allocators' C twins in place after editing xcfbench/sim/native/*.c (the
# install does it too; this is the quick way while working on them).
native: | $(BIN)/python
	gcc -shared -fPIC -O2 -std=gnu99 -Wall -Wextra -Wno-unused-parameter \
		-Wno-missing-field-initializers \
		-I"$$($(BIN)/python -c 'import sysconfig; print(sysconfig.get_paths()["include"])')" \
		xcfbench/sim/native/*.c \
		-o xcfbench/sim/_native$$($(BIN)/python -c 'import sysconfig; print(sysconfig.get_config_var("EXT_SUFFIX"))')

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
