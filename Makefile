# Two commands on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: run test test-fast bench lint format clean translations browser demo chaos

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

## run: the service on its embedded defaults (SQLite in ./var, http://127.0.0.1:8000)
run: $(STAMP)
	$(BIN)/alerts run

## demo: the whole flow offline (local feeds, sample subscribers and firms, two staff accounts)
demo: $(STAMP)
	$(BIN)/python -m alerts.demo

## test: the whole suite, against SQLite and (when reachable or CI=true) PostgreSQL
test: $(STAMP) browser
	$(BIN)/pytest

## chaos: the long fault campaign (crashes at 100k, provider trouble, database faults); a summary table at the end
chaos: $(STAMP)
	$(BIN)/pytest -m chaos tests/chaos -p no:cacheprovider

## browser: Debian's chromium for the Playwright tests, installed when missing
browser:
	@command -v chromium >/dev/null 2>&1 || { \
		echo "installing Debian's chromium for the browser tests"; \
		apt-get install -y -qq chromium >/dev/null 2>&1 || \
		{ apt-get update -qq && apt-get install -y -qq chromium >/dev/null; } || \
		echo "could not install chromium: browser tests skip (and fail under CI=true)"; }

## bench: every benchmark under bench/, one JSON line per measurement
bench: $(STAMP)
	@for module in $$(ls bench/*.py | grep -v -e __init__ -e common | sed 's|/|.|; s|\.py$$||'); do \
		$(BIN)/python -m $$module || exit 1; \
	done

lint: $(STAMP)
	$(BIN)/ruff check alerts subscribers tests bench
	$(BIN)/ruff format --check alerts subscribers tests bench
	$(BIN)/pip-audit --vulnerability-service pypi --skip-editable --progress-spinner off

format: $(STAMP)
	$(BIN)/ruff format alerts subscribers tests bench
	$(BIN)/ruff check --fix alerts subscribers tests bench

clean:
	rm -rf $(VENV) var .pytest_cache .ruff_cache *.egg-info

## translations: extract messages and update the nl/fr/de catalogues (then translate the new entries)
translations: $(STAMP)
	$(BIN)/pybabel extract -F babel.cfg -k N_ -k _problem -k gettext:2 --no-location \
		--sort-output --omit-header -o templates/translations/messages.pot .
	$(BIN)/pybabel update -i templates/translations/messages.pot -d templates/translations \
		--no-fuzzy-matching
