# One command sets up and runs the main job, one sets up and runs the tests.
# Everything installs into .venv; nothing relies on what the machine happens to have.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: demo test venv clean

# The tflite extra (~0.9 GB) is installed so that the LiteRT backend is tested too, and in the
# same pip command: added afterwards, pip downgrades typing-extensions to 4.12 (xdsl, a
# litert-torch dependency, wants <4.13) under already-installed packages that need newer.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test,tflite]'
	touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(PY) -m mobileformer.summary

test: $(STAMP)
	$(PY) -m pytest -q

clean:
	rm -rf $(VENV) build *.egg-info
