# Everything starts from nothing: the first target that needs the virtual
# environment creates it and installs reacher with the pinned versions.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# Run a command with its output kept back, shown only if it fails: pip's progress
# and its build backend's warnings are noise when the install works.
# (A comma inside $(call ...) would split its argument: extras lists go in variables.)
quietly = log=$$(mktemp) && { $(1) >$$log 2>&1 || { rc=$$?; cat $$log >&2; rm -f $$log; exit $$rc; }; } && rm -f $$log

SETUP_EXTRAS := test,sweep,export
BENCH_EXTRAS := test,bench

.PHONY: setup test demo bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	@echo "installing reacher and its pinned dependencies into $(VENV)"
	@$(call quietly,$(PYTHON) -m venv $(VENV))
	@$(call quietly,$(BIN)/python -m pip install --upgrade pip)
	@$(call quietly,$(BIN)/python -m pip install -c constraints.txt -e '.[$(SETUP_EXTRAS)]')
	@touch $(STAMP)

# pytest exits 5 when it collects nothing; say so instead of a bare failure.
test: $(STAMP)
	MUJOCO_GL=$${MUJOCO_GL:-egl} $(BIN)/python -m pytest $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "error: pytest collected no tests" >&2; fi; exit $$rc

demo: $(STAMP)
	$(BIN)/reacher demo

bench: $(STAMP)
	@$(call quietly,$(BIN)/python -m pip install -c constraints.txt -e '.[$(BENCH_EXTRAS)]')
	$(BIN)/python scripts/bench_env.py
	$(BIN)/python scripts/bench_update.py
	$(BIN)/python scripts/bench_learning.py
	$(BIN)/python scripts/bench_arms.py

clean:
	rm -rf $(VENV) build *.egg-info
