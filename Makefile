# Two commands on a fresh machine: `make demo` and `make test`. Each creates .venv and installs
# everything first (torch/torchvision, the package with its extras, Debian's graphviz for `dot` and
# chromium for the report's browser tests).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
# torchvision needs a torch it was built against; these pairs install from the registry on this
# kind of machine (x86_64: CUDA build that runs on the CPU; aarch64: CPU build).
ifeq ($(shell uname -m),aarch64)
TORCH_PKGS := torch==2.9.1 torchvision==0.24.1
else
TORCH_PKGS := torch==2.14.1 torchvision==0.29.1
endif

.PHONY: install demo test test-all bench bench-zoo bench-peers bench-compiled clean

install: $(STAMP)

# timm for its tests (tests/frontends/test_timm.py); smp and transformers for tests/tools/test_sources.py
# (those tests skip without them); ultralytics (it pulls opencv-python) for the YOLO levels in
# tests/answers/test_levels.py (built from its bundled yaml, no weights); ray for the zoo's Ray
# backend (tests/tools/test_sweep.py; a 79 MB wheel, installed in 12 s here).
$(STAMP): pyproject.toml Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q $(TORCH_PKGS)
	$(BIN)/python -m pip install -q -e '.[torch,render,report,zoo,erf,onnx,timm,smp,transformers,ultralytics,ray,dev]'
	command -v dot >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq graphviz; } \
	  || echo "warning: could not install graphviz (dot); rendering to SVG/PNG will fail"
	command -v chromium >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq chromium; } \
	  || echo "warning: could not install chromium; the browser tests of rfgraph report will skip"
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/python examples/classic_chain.py
	$(BIN)/python examples/residual_block.py
	mkdir -p out
	$(BIN)/rfgraph analyze resnet50
	$(BIN)/rfgraph render resnet50 -o out/resnet50.svg
	$(BIN)/rfgraph render inception_v3 --input-size 299 -o out/inception_v3.svg
	@echo "diagrams written: out/resnet50.svg out/inception_v3.svg (open them in a browser)"

test: $(STAMP)
	$(BIN)/python -m pytest -q

test-all: $(STAMP)
	$(BIN)/python -m pytest -q -m ''

bench: $(STAMP)
	$(BIN)/python benchmarks/scaling.py

# the torchvision zoo (classification, one process) and the side-by-side with torchscan and
# gradient support; results in benchmarks/results/
bench-zoo: $(STAMP)
	$(BIN)/python benchmarks/zoo.py

bench-peers: $(STAMP)
	$(BIN)/python benchmarks/peers.py

# the engine compiled with mypyc next to CPython (needs a C compiler; mypy only for this)
bench-compiled: $(STAMP)
	$(BIN)/pip install -q mypy==2.4.1
	$(BIN)/python benchmarks/compiled_engine.py

clean:
	rm -rf $(VENV) out build *.egg-info
