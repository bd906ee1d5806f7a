# One command sets up and runs the main job, one sets up and runs the tests.
# Everything installs into .venv; nothing relies on what the machine happens to have.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

# make demo MODEL=mobile_former_96m CHECKPOINT=path/to/authors.pth CALIB=path/to/images
MODEL      ?= mobile_former_26m
CHECKPOINT ?=
CALIB      ?= digits
OUT        ?= out/demo
CKPT_ARG    = $(if $(CHECKPOINT),--checkpoint $(CHECKPOINT),)
# Exports run two at a time: PyTorch's OpenMP threads sleep while they wait (OMP_WAIT_POLICY=PASSIVE) instead
# of spinning against the other step; the same threads split the same work, so the same bytes (26m int8
# export beside a busy machine, 2026-12-08: calibration 92 -> 7 CPU s, the same .pte). Timings keep the default.
EXPORT      = env OMP_WAIT_POLICY=PASSIVE $(PY) -m quant.export --model $(MODEL) $(CKPT_ARG) --calib $(CALIB) --out $(OUT)

.PHONY: demo test docs venv tools data accuracy accuracy-seeds clean

# The tflite extra (~0.9 GB) is installed so that the LiteRT backend is tested too, and in the
# same pip command: added afterwards, pip downgrades typing-extensions to 4.12 (xdsl, a
# litert-torch dependency, wants <4.13) under already-installed packages that need newer.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test,tflite]'
	touch $(STAMP)

venv: $(STAMP)

# Debian packages the tests and native tools need (scripts/debian-packages.txt; root installs them)
# and kotlinc for the JVM test of android_demo's Kotlin (npm, scripts/kotlin).
tools:
	scripts/install_tools.sh

# The main job on defaults: build, quantize on built-in images, export to every backend (each
# validated on the host), benchmark on the host, count AArch64 instructions, then one summary table.
# Every step runs once; independent steps run side by side (make -j2: the two cores), each
# printing one line with its time (logs in $(OUT)/logs/).
demo: $(STAMP) tools
	@started=$$(date +%s); \
	$(MAKE) --no-print-directory -j2 demo-steps && \
	echo "demo steps took $$(( $$(date +%s) - started )) s" && \
	$(PY) scripts/demo_summary.py $(OUT)

STEP    = scripts/demo_step.sh $(OUT)/logs
ART     = $(OUT)/$(MODEL)
PTES    = $(ART)_xnnpack_fp32_stock.pte $(ART)_xnnpack_fp32.pte $(ART)_xnnpack_int8_stock.pte $(ART)_xnnpack_int8.pte
XNNPACK = export-int8 export-int8-stock export-fp32 export-fp32-stock
EXPORTS = $(XNNPACK) export-coreml export-tflite

.PHONY: demo-steps summary $(EXPORTS) bench arm64 arm64-armv9
# The XNNPACK exports first, so that the AArch64 counts (the longest steps; instruction counts do not
# depend on load) run beside the Core ML and LiteRT exports; the host benchmark runs last, alone.
# Both named phone cores: cortex-a76 (2019-class) and armv9 (i8mm, 2022+), LiteRT's .tflite beside.
demo-steps: $(XNNPACK) export-tflite arm64 arm64-armv9 export-coreml summary bench
summary:
	@$(STEP) $@ $(PY) -m mobileformer.summary --variant $(MODEL) --layers
export-fp32-stock:
	@$(STEP) $@ $(EXPORT) --no-progress --backend xnnpack --precision fp32 --recipe xnnpack-stock
export-fp32:
	@$(STEP) $@ $(EXPORT) --no-progress --backend xnnpack --precision fp32
export-int8-stock:
	@$(STEP) $@ $(EXPORT) --no-progress --backend xnnpack --recipe xnnpack-stock
export-int8:
	@$(STEP) $@ $(EXPORT) --no-progress --backend xnnpack
export-coreml:
	@$(STEP) $@ $(EXPORT) --no-progress --backend coreml
export-tflite:
	@$(STEP) $@ $(EXPORT) --no-progress --backend tflite
# Two calls: the host ExecuTorch runtime times every operator (traced) and LiteRT does not, and one table
# never mixes traced and untraced latencies (docs/latency-format.md); the .pte files are interleaved.
bench: $(EXPORTS) arm64 arm64-armv9 summary
	@$(STEP) $@-litert $(PY) -m quant.bench $(ART)_tflite_int8.tflite --out $(OUT)/bench --name $(MODEL)_litert
	@$(STEP) $@ $(PY) -m quant.bench $(PTES) --out $(OUT)/bench --name $(MODEL)
arm64: $(XNNPACK) export-tflite
	@$(STEP) $@ $(PY) -m quant.bench --arm64 --cpu cortex-a76 $(PTES) $(ART)_tflite_int8.tflite --out $(OUT)/arm64 \
		--name $(MODEL)_cortex-a76
arm64-armv9: $(XNNPACK) export-tflite
	@$(STEP) $@ $(PY) -m quant.bench --arm64 --cpu armv9 $(PTES) $(ART)_tflite_int8.tflite --out $(OUT)/arm64 \
		--name $(MODEL)_armv9

# The suite on both cores (pytest-xdist): each test file on one worker, so that a module's fixtures are
# made once; tests/conftest.py gives each worker one thread and makes the session's exports once for both.
# TEST_WORKERS=0: one process, as before (2,352 s against 1,349 and 1,596 s with two workers here, 2026-12-07).
TEST_WORKERS ?= 2
test: $(STAMP) tools
	$(PY) -m pytest -q -n $(TEST_WORKERS) --dist loadfile

# The documentation site (mkdocs.yml) in build/site/, strict: a broken link, anchor or image, or a
# page left out of the nav, fails it. Its commands page is every command's --help, generated.
docs: $(STAMP)
	$(PY) -m mkdocs build --strict --quiet
	@echo "docs: site in build/site/ (open build/site/index.html)"

# Fashion-MNIST for the accuracy experiment (Debian package, ~31 MB; needs root).
data:
	@test -f /usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz || \
		(apt-get update -qq && apt-get install -y -qq dataset-fashion-mnist)

# fp32 training, PTQ and QAT on Fashion-MNIST (docs/accuracy.md); about two hours on 2 cores.
# RECIPE=coreml or RECIPE=tflite: the same for that backend's artifacts (scripts/accuracy.sh).
accuracy: $(STAMP) data
	scripts/accuracy.sh

# The same over three seeds, on the case where PTQ reliably loses (docs/accuracy.md); 2 to 3
# hours on 2 cores (2h15 here with two seeds at a time).
accuracy-seeds: $(STAMP) data
	scripts/accuracy_seeds.sh

clean:
	rm -rf $(VENV) build *.egg-info out
