# Every target sets libtorch up first (once; later calls find it and do nothing).
WITH_TORCH := scripts/with-libtorch.sh
EXPERIMENT ?= experiments/quick.toml
DATA_DIR ?= data
OUT ?= outputs

.PHONY: setup build test lint reproduce docker-test clean-venv

setup:
	@$(WITH_TORCH) true

build:
	$(WITH_TORCH) cargo build --release

test:
	$(WITH_TORCH) cargo test

# Formatting and every clippy warning, as CI checks them before the tests.
lint:
	cargo fmt --check
	$(WITH_TORCH) cargo clippy --all-targets -- -D warnings

# Builds the Docker image and runs it as a cluster job would (root, minutes; not part of make test).
docker-test:
	scripts/docker-test.sh

reproduce: build
	$(WITH_TORCH) scripts/reproduce.sh "$(EXPERIMENT)" "$(DATA_DIR)" "$(OUT)"
