# Every target sets libtorch up first (once; later calls find it and do nothing).
WITH_TORCH := scripts/with-libtorch.sh
EXPERIMENT ?= experiments/quick.toml
DATA_DIR ?= data
OUT ?= outputs

# The homeonorm binary cluster-test submits (built first when it is the release one).
BINARY ?= target/release/homeonorm

.PHONY: setup build test lint reproduce docker-test cluster-test multinode-test clean-venv

setup:
	@$(WITH_TORCH) true

build:
	$(WITH_TORCH) cargo build --release

# Every test binary runs, even after one fails, so that all are counted.
test:
	$(WITH_TORCH) cargo test --no-fail-fast

# Formatting and every clippy warning, as CI checks them before the tests.
lint:
	cargo fmt --check
	$(WITH_TORCH) cargo clippy --all-targets -- -D warnings

# The shipped Slurm array job on a throwaway single-node Slurm cluster: submitted, requeued,
# signalled, resubmitted and compared with a local sweep (root; installs Debian's Slurm
# and munge when missing; a few minutes).
cluster-test:
	@if [ "$(BINARY)" = target/release/homeonorm ]; then $(MAKE) --no-print-directory build; fi
	$(WITH_TORCH) scripts/cluster-test.sh "$(BINARY)"

# The same array job on a three-node Slurm cluster, each node in its own network namespace,
# through a lost node, a stalled node, a node cut off from the controller and two arrays of
# one sweep at once (root; installs Slurm and munge when missing; about five minutes).
multinode-test:
	@if [ "$(BINARY)" = target/release/homeonorm ]; then $(MAKE) --no-print-directory build; fi
	$(WITH_TORCH) scripts/multinode-test.sh "$(BINARY)"

# Builds the Docker image and runs it as a cluster job would (root; installs docker.io and
# debootstrap when missing; minutes; not part of make test).
docker-test:
	scripts/docker-test.sh

reproduce: build
	$(WITH_TORCH) scripts/reproduce.sh "$(EXPERIMENT)" "$(DATA_DIR)" "$(OUT)"
