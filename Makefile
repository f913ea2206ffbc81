# Two entry points, both self-contained on a fresh machine:
#   make run   - create .venv if needed, install requirements, launch the dashboard
#   make test  - the same setup plus Debian's chromium for the browser test, then the whole suite
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell sha1sum requirements.txt | cut -c1-12)

.PHONY: run test setup browser bench models clean

run: setup
	$(PY) -m streamlit run app.py

test: setup browser
	$(PY) -m pytest -q

setup: $(STAMP)

$(STAMP): requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt
	rm -f $(VENV)/.installed-* && touch $@

# Debian's chromium for the real-browser test (never `playwright install`: it downloads).
browser:
	@test -x /usr/bin/chromium || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -q && $$SUDO apt-get install -y -q chromium; }

bench: setup
	$(PY) bench/accuracy.py
	$(PY) bench/overhead.py
	$(PY) bench/throughput.py

models: setup
	$(PY) -m llc_core build-cache --out cached_models

clean:
	rm -rf $(VENV) .pytest_cache
