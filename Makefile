# Everything starts from nothing: the first target that needs the virtual
# environment creates it and installs reacher with the pinned versions.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: setup test demo bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[test,sweep]'
	touch $(STAMP)

# pytest exits 5 when it collects nothing; say so instead of a bare failure.
test: $(STAMP)
	MUJOCO_GL=$${MUJOCO_GL:-egl} $(BIN)/python -m pytest $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "error: pytest collected no tests" >&2; fi; exit $$rc

demo: $(STAMP)
	$(BIN)/reacher demo

bench: $(STAMP)
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[test,bench]'
	$(BIN)/python scripts/bench_env.py
	$(BIN)/python scripts/bench_update.py
	$(BIN)/python scripts/bench_learning.py

clean:
	rm -rf $(VENV) build *.egg-info
