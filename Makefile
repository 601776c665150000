# The two commands of the README. Each sets itself up on a fresh machine.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# The Node test peers (a local Sigstore instance, an independent verifier), from the lock file
NODE_PEERS := tests/sigstore/node_modules/.installed
# The OCI test registry: Debian's docker-registry (the CNCF distribution registry)
REGISTRY_PEER := $(VENV)/.docker-registry
# The browser the HTML audit report is opened in: Debian's chromium (headless)
BROWSER_PEER := $(VENV)/.chromium

.PHONY: demo test lint bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e ".[test]"
	touch $@

$(VENV)/.bench-installed: pyproject.toml $(VENV)/.installed
	$(BIN)/pip install --quiet -e ".[test,bench]"
	touch $@

$(NODE_PEERS): tests/sigstore/package.json tests/sigstore/package-lock.json
	@if command -v npm >/dev/null 2>&1; then \
		npm ci --prefix tests/sigstore --no-audit --no-fund && touch $@; \
	else \
		echo "npm not found: the keyless Sigstore tests will be skipped (they fail when CI=true)"; \
	fi

$(REGISTRY_PEER): | $(BIN)/python
	@if command -v docker-registry >/dev/null 2>&1; then \
		touch $@; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		(DEBIAN_FRONTEND=noninteractive apt-get install -y docker-registry \
			|| (apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y docker-registry)) \
			&& touch $@ \
			|| echo "could not install docker-registry: the OCI registry tests will be skipped (they fail when CI=true)"; \
	else \
		echo "docker-registry not found and not root: the OCI registry tests will be skipped (they fail when CI=true); install it with: sudo apt-get install docker-registry"; \
	fi

$(BROWSER_PEER): | $(BIN)/python
	@if command -v chromium >/dev/null 2>&1; then \
		touch $@; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		(DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium \
			|| (apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium)) \
			&& touch $@ \
			|| echo "could not install chromium: the HTML report browser tests will be skipped (they fail when CI=true)"; \
	else \
		echo "chromium not found and not root: the HTML report browser tests will be skipped (they fail when CI=true); install it with: sudo apt-get install chromium"; \
	fi

## demo: the ML-BOM of the built-in example model, written to out/ and summarised
demo: $(VENV)/.installed
	@mkdir -p out
	$(BIN)/mlbom generate examples/tiny-sentiment --version 1.0.0 \
		--manufacturer "mlbom example" --manufacturer-contact security@example.org \
		-o out/tiny-sentiment.cdx.json
	@$(BIN)/python -c "import json; d = json.load(open('out/tiny-sentiment.cdx.json')); \
		m = d['metadata']['component']; \
		print(m['name'], m['version'], [l['license'].get('id') for l in m['licenses']], \
		len(d['components']), 'components, validated against CycloneDX', d['specVersion'])"

## test: lint and the whole test suite
test: $(VENV)/.installed $(NODE_PEERS) $(REGISTRY_PEER) $(BROWSER_PEER)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python -m pytest

# wrk and hey load the webhook in bench/bench_admission.py (Debian packages)
$(VENV)/.load-tools: | $(BIN)/python
	@if command -v wrk >/dev/null 2>&1 && command -v hey >/dev/null 2>&1; then \
		touch $@; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		(DEBIAN_FRONTEND=noninteractive apt-get install -y wrk hey \
			|| (apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y wrk hey)) && touch $@; \
	else \
		echo "wrk and hey not found and not root: install them with sudo apt-get install wrk hey"; \
	fi

## bench: the speed figures of the issues (hashing, cache, --help, Hub models, verify, webhook, scan, audit export)
bench: $(VENV)/.bench-installed $(NODE_PEERS) $(REGISTRY_PEER) $(VENV)/.load-tools
	$(BIN)/python bench/bench_generate.py
	$(BIN)/python bench/bench_hub.py
	$(BIN)/python bench/bench_verify.py
	$(BIN)/python bench/bench_admission.py
	$(BIN)/python bench/bench_scan.py
	$(BIN)/python bench/bench_audit.py

clean:
	rm -rf $(VENV) out .pytest_cache .ruff_cache
