#!/usr/bin/env bash
# Installs PyTorch (and with it libtorch) into a virtual environment kept outside
# the clone, so that tch/torch-sys can build against it. Idempotent: it does
# nothing when the environment is already there and imports the right torch.
#
#   HOMEONORM_TORCH_VENV   where the venv lives
#                          (default ${XDG_CACHE_HOME:-$HOME/.cache}/homeonorm/torch-2.11.0)
#   HOMEONORM_PYTHON       the Python used to create it (default python3)
#
# Prints the venv's path on its last line of standard output.
set -euo pipefail

TORCH_VERSION=2.11.0
# What decodes ../shared/data's JPEG copy of CIFAR-10 (cifar10-jpeg-to-bin.py): pinned,
# because another Pillow (its libjpeg-turbo) decodes other pixels, and runs on other
# bytes are another experiment. With these, the binary files' content sha256 is the one
# docs/reproduction/README.md states.
NUMPY_VERSION=2.4.6
PILLOW_VERSION=13.0.0
# What builds python/ (homeonorm_writer) when the tests install it without reaching PyPI
# (`pip install --no-build-isolation`): a setuptools that builds wheels by itself.
SETUPTOOLS_VERSION=80.9.0
# nvcc's crt/ headers, which the CUDA runtime's headers include: build.rs compiles the
# CUDA-graph shim (csrc/cuda_graph.cpp) with them. The version torch's own CUDA toolkit
# pins (its `crt` extra).
CUDA_TOOLKIT_VERSION=13.0.2
# What reads `homeonorm export tensorboard`'s event files back in tests/tensorboard.rs
# (EventAccumulator, the HParams plugin's protos), as `tensorboard --logdir` reads them.
TENSORBOARD_VERSION=2.21.0
venv="${HOMEONORM_TORCH_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/homeonorm/torch-$TORCH_VERSION}"
python="${HOMEONORM_PYTHON:-python3}"

torch_ok() {
    [ -x "$venv/bin/python" ] &&
        "$venv/bin/python" -c "import torch, numpy, PIL, setuptools, sys; sys.exit(0 if (torch.__version__.split('+')[0], numpy.__version__, PIL.__version__, setuptools.__version__) == ('$TORCH_VERSION', '$NUMPY_VERSION', '$PILLOW_VERSION', '$SETUPTOOLS_VERSION') else 1)" 2>/dev/null &&
        "$venv/bin/python" -c "import importlib.metadata as m, sys; sys.exit(0 if m.version('nvidia-cuda-crt') else 1)" 2>/dev/null &&
        "$venv/bin/python" -c "import tensorboard, sys; sys.exit(0 if tensorboard.__version__ == '$TENSORBOARD_VERSION' else 1)" 2>/dev/null
}

if torch_ok; then
    echo "$venv"
    exit 0
fi

echo "setup-libtorch: installing torch==$TORCH_VERSION into $venv (about 5 GB, a few minutes)" >&2
mkdir -p "$(dirname "$venv")"
"$python" -m venv "$venv" >&2
# numpy and pillow: for ../shared/data/cifar10-jpeg-to-bin.py (real CIFAR-10 images as the official binary files).
if ! "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "torch==$TORCH_VERSION" "numpy==$NUMPY_VERSION" "pillow==$PILLOW_VERSION" "setuptools==$SETUPTOOLS_VERSION" "cuda-toolkit[crt]==$CUDA_TOOLKIT_VERSION" "tensorboard==$TENSORBOARD_VERSION" >&2; then
    echo "setup-libtorch: pip could not install torch==$TORCH_VERSION into $venv; check that PyPI is reachable and that the disk has about 5 GB free." >&2
    exit 1
fi
if ! torch_ok; then
    echo "setup-libtorch: $venv does not import torch $TORCH_VERSION, numpy $NUMPY_VERSION, pillow $PILLOW_VERSION, setuptools $SETUPTOOLS_VERSION and tensorboard $TENSORBOARD_VERSION (with nvidia-cuda-crt) after installing them." >&2
    exit 1
fi
echo "$venv"
