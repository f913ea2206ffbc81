# Two entry points, both self-contained on a fresh machine:
#   make run   - create .venv if needed, install the project with its dashboard extra, launch the dashboard
#   make test  - the same plus the test and ray extras and Debian's chromium, then the whole suite
# Dependencies live in pyproject.toml (requirements.txt is `-e .[dashboard]`). A stamp per set of
# extras, named after the hash of both files, makes a re-run skip pip entirely.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
DEPS_HASH := $(shell cat pyproject.toml requirements.txt | sha1sum | cut -c1-12)
RUN_STAMP := $(VENV)/.installed-dashboard-$(DEPS_HASH)
TEST_STAMP := $(VENV)/.installed-dashboard,test,ray-$(DEPS_HASH)

.PHONY: run test setup setup-test browser bench models clean

run: setup
	$(PY) -m streamlit run app.py

test: setup-test browser
	$(PY) -m pytest -q -n auto --dist loadfile --durations=15

setup: $(RUN_STAMP)
setup-test: $(TEST_STAMP)

$(RUN_STAMP): pyproject.toml requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt
	rm -f $(VENV)/.installed-dashboard-* && touch $@

# The test set includes the dashboard's, so it also satisfies `make run`.
$(TEST_STAMP): pyproject.toml requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[dashboard,test,ray]"
	rm -f $(VENV)/.installed-* && touch $@ $(RUN_STAMP)

# Debian's chromium for the real-browser test (never `playwright install`: it downloads).
browser:
	@test -x /usr/bin/chromium || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -q && $$SUDO apt-get install -y -q chromium; }

# Benchmarks run from the repository root with the package installed (make setup does).
bench: setup
	$(PY) -m bench.accuracy
	$(PY) -m bench.overhead
	$(PY) -m bench.throughput

models: setup
	$(PY) -m llc_core build-cache --out cached_models

clean:
	rm -rf $(VENV) .pytest_cache
