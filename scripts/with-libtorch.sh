#!/usr/bin/env bash
# Runs a command with libtorch set up: installs it first if needed (setup-libtorch.sh),
# then points torch-sys at it and puts its Python first on PATH (the parity tests run
# the PyTorch reference with it).   Usage: scripts/with-libtorch.sh cargo test
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
venv="$("$here/setup-libtorch.sh" | tail -n 1)"
export VIRTUAL_ENV="$venv"
export PATH="$venv/bin:$PATH"
export LIBTORCH_USE_PYTORCH=1
export HOMEONORM_PYTHON="$venv/bin/python"
exec "$@"
