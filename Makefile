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
EXPORT      = $(PY) -m quant.export --model $(MODEL) $(CKPT_ARG) --calib $(CALIB) --out $(OUT)

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

# The main job on defaults: build, quantize on built-in images, export, validate, benchmark, report.
demo: $(STAMP) tools
	$(PY) -m mobileformer.summary --variant $(MODEL) --layers
	$(EXPORT) --backend xnnpack --precision fp32 --recipe xnnpack-stock
	$(EXPORT) --backend xnnpack --precision fp32
	$(EXPORT) --backend xnnpack --recipe xnnpack-stock
	$(EXPORT) --backend xnnpack
	$(EXPORT) --backend xnnpack --profile-blocks
	$(EXPORT) --backend coreml
	$(EXPORT) --backend tflite
	$(PY) -m quant.bench $(OUT)/$(MODEL)_xnnpack_fp32_stock.pte $(OUT)/$(MODEL)_xnnpack_fp32.pte $(OUT)/$(MODEL)_xnnpack_int8_stock.pte \
		$(OUT)/$(MODEL)_xnnpack_int8.pte $(OUT)/$(MODEL)_xnnpack_int8_blocks.pte $(OUT)/$(MODEL)_tflite_int8.tflite \
		--out $(OUT)/bench --name $(MODEL)
	$(PY) -m quant.bench --arm64 $(OUT)/$(MODEL)_xnnpack_fp32_stock.pte $(OUT)/$(MODEL)_xnnpack_fp32.pte \
		$(OUT)/$(MODEL)_xnnpack_int8_stock.pte $(OUT)/$(MODEL)_xnnpack_int8.pte --out $(OUT)/arm64 --name $(MODEL)
	@echo "demo done: artifacts and manifests in $(OUT)/, host benchmark in $(OUT)/bench/, AArch64 instruction counts in $(OUT)/arm64/"

test: $(STAMP) tools
	$(PY) -m pytest -q

# The documentation site (mkdocs.yml) in build/site/, strict: a broken link, anchor or image, or a
# page left out of the nav, fails it. Its commands page is every command's --help, generated.
docs: $(STAMP)
	$(PY) -m mkdocs build --strict --quiet
	@echo "docs: site in build/site/ (open build/site/index.html)"

# Fashion-MNIST for the accuracy experiment (Debian package, ~31 MB; needs root).
data:
	@test -f /usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz || \
		(apt-get update -qq && apt-get install -y -qq dataset-fashion-mnist)

# fp32 training, PTQ and QAT on Fashion-MNIST (docs/benchmarks.md, "Accuracy"); about two hours on 2 cores.
# RECIPE=coreml or RECIPE=tflite: the same for that backend's artifacts (scripts/accuracy.sh).
accuracy: $(STAMP) data
	scripts/accuracy.sh

# The same over three seeds, on the case where PTQ reliably loses (docs/benchmarks.md, "Several
# seeds"); 2 to 3 hours on 2 cores (2h15 here with two seeds at a time).
accuracy-seeds: $(STAMP) data
	scripts/accuracy_seeds.sh

clean:
	rm -rf $(VENV) build *.egg-info out
