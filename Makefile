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
# The image build of tests/test_image.py: Debian's buildah (no daemon), podman and runc (to run
# it), debootstrap (its base image, made from Debian packages: no registry is needed)
IMAGE_PEER := $(VENV)/.image-builder
IMAGE_PEER_PACKAGES := buildah podman runc debootstrap

# make image: the Containerfile built with the first of podman, buildah, docker found (docker
# only when its daemon answers), or IMAGE_BUILDER=...; tagged IMAGE
IMAGE ?= mlbom:dev
IMAGE_BUILDER ?= $(firstword $(foreach b,podman buildah,$(if $(shell command -v $(b) 2>/dev/null),$(b))) \
	$(if $(shell docker info >/dev/null 2>&1 && echo up),docker))
# podman and buildah run the build's RUN steps in a chroot: no OCI runtime, cgroups or user
# namespaces needed, so it also builds inside containers and CI sandboxes; IMAGE_ISOLATION=oci
# uses the runtime's full isolation instead
IMAGE_ISOLATION ?= chroot
# The CA bundle the build's pip trusts (a build secret, never stored in the image): the one
# this machine's pip is told to use, if any (a TLS-inspecting proxy's CA is in it)
IMAGE_CA_BUNDLE ?= $(firstword $(wildcard $(PIP_CERT) $(SSL_CERT_FILE)))
# Another base than the Containerfile's digest-pinned default, e.g. a mirror's copy of it
BASE_IMAGE ?=
IMAGE_VERSION = $(shell sed -n 's/^__version__ = "\(.*\)"/\1/p' mlbom/__init__.py)
IMAGE_REVISION = $(shell git rev-parse HEAD 2>/dev/null)$(shell git diff --quiet HEAD -- 2>/dev/null || echo -dirty)

.PHONY: demo test lint bench clean image

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

$(IMAGE_PEER): | $(BIN)/python
	@if command -v buildah >/dev/null 2>&1 && command -v podman >/dev/null 2>&1 \
		&& command -v runc >/dev/null 2>&1 && command -v debootstrap >/dev/null 2>&1; then \
		touch $@; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		(DEBIAN_FRONTEND=noninteractive apt-get install -y $(IMAGE_PEER_PACKAGES) \
			|| (apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y $(IMAGE_PEER_PACKAGES))) \
			&& touch $@ \
			|| echo "could not install $(IMAGE_PEER_PACKAGES): the image tests will be skipped (they fail when CI=true)"; \
	else \
		echo "$(IMAGE_PEER_PACKAGES) not all found, or not root: the image tests will be skipped (they fail when CI=true); install them with: sudo apt-get install $(IMAGE_PEER_PACKAGES), and run make test as root"; \
	fi

## image: the container image the Helm chart runs (webhook, recorder, verifier), tagged $(IMAGE); prints its digest
image:
	@builder="$(strip $(IMAGE_BUILDER))"; \
	if [ -z "$$builder" ]; then \
		echo "no image builder: install podman, buildah or docker (with its daemon running)"; exit 1; \
	fi; \
	mkdir -p out; rm -f out/image.iid; \
	set -- --build-arg VERSION=$(IMAGE_VERSION) --build-arg REVISION=$(IMAGE_REVISION) \
		--iidfile out/image.iid -f Containerfile -t $(IMAGE); \
	if [ -n "$(IMAGE_CA_BUNDLE)" ]; then set -- "$$@" --secret id=ca-certificates,src=$(IMAGE_CA_BUNDLE); fi; \
	if [ -n "$(BASE_IMAGE)" ]; then set -- "$$@" --build-arg BASE_IMAGE=$(BASE_IMAGE); fi; \
	echo "building $(IMAGE) with $$builder"; \
	case "$$builder" in \
	docker) \
		tar -c --exclude=__pycache__ --exclude='*.pyc' Containerfile pyproject.toml README.md \
			mlbom attest admission schemas | DOCKER_BUILDKIT=1 docker build "$$@" - || exit 1 ;; \
	*) \
		$$builder build --isolation $(IMAGE_ISOLATION) "$$@" . || exit 1 ;; \
	esac; \
	echo "image ID:  $$(cat out/image.iid)"; \
	case "$$builder" in \
	podman) digest="$$(podman image inspect --format '{{.Digest}}' $(IMAGE))" ;; \
	buildah) digest="$$(buildah inspect --type image --format '{{.FromImageDigest}}' $(IMAGE))" ;; \
	*) digest="" ;; \
	esac; \
	if [ -n "$$digest" ]; then echo "digest:    $$digest (of the local manifest)"; fi; \
	echo "A registry reports the digest the chart deploys (values image.repository, image.digest) on push:"; \
	echo "  $$builder push $(IMAGE) REGISTRY/REPOSITORY:TAG$$( [ $$builder = docker ] || echo ' --digestfile out/image.digest')"

## demo: the whole path on the built-in example, offline: generate, keygen, sign, push,
## review two pods (one admitted, one denied), export the audit evidence; outputs in out/demo/
demo: $(VENV)/.installed
	@sh examples/demo/walk.sh $(BIN) out/demo

## test: lint, the type check, the layer contract and the whole test suite
test: $(VENV)/.installed $(NODE_PEERS) $(REGISTRY_PEER) $(BROWSER_PEER) $(IMAGE_PEER)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports
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
