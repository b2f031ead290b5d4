# Every target sets libtorch up first (once; later calls find it and do nothing).
WITH_TORCH := scripts/with-libtorch.sh
EXPERIMENT ?= experiments/quick.toml
DATA_DIR ?= data
OUT ?= outputs

.PHONY: setup build test reproduce clean-venv

setup:
	@$(WITH_TORCH) true

build:
	$(WITH_TORCH) cargo build --release

test:
	$(WITH_TORCH) cargo test

reproduce: build
	$(WITH_TORCH) scripts/reproduce.sh "$(EXPERIMENT)" "$(DATA_DIR)" "$(OUT)"
