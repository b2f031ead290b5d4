#!/usr/bin/env bash
# Makes CIFAR-10's official binary layout in DEST (e.g. data/cifar-10-batches-bin) from
# the JPEG copy of all 60,000 images in ../shared/data (see its README: real CIFAR-10,
# not byte-exact; accuracy on it is close to, not identical with, the official files').
# Needs the Python of scripts/with-libtorch.sh (it has numpy and pillow).
#   scripts/cifar10-from-shared.sh DEST [SHARED_DATA_DIR]
set -euo pipefail
dest="$1"
shared="${2:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/../shared/data}"
archive="$shared/cifar10-jpeg.tar.gz"
if [ ! -f "$archive" ]; then
    echo "cifar10-from-shared: no $archive here" >&2
    exit 2
fi
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
tar xzf "$archive" -C "$tmp"
"${HOMEONORM_PYTHON:-python3}" "$shared/cifar10-jpeg-to-bin.py" "$tmp" "$tmp/bin" >&2
mkdir -p "$dest"
mv "$tmp"/bin/* "$dest"/
echo "cifar10-from-shared: wrote $dest (from JPEG copies: close to, not byte-identical with, the official files)" >&2
