#!/usr/bin/env python3
"""CIFAR-10's binary files with every image compressed once more as JPEG at QUALITY.

    scripts/cifar10-reencode.py SRC DST QUALITY

SRC and DST are folders of data_batch_1..5.bin and test_batch.bin. Each image is
encoded with Pillow at QUALITY (4:2:0 chroma subsampling, Pillow's default) and decoded
again; labels and record order are kept. It measures how far one more generation of
JPEG artefacts moves a result (docs/reproduction/README.md, the vanilla / weight-norm
gap): the copy in ../shared/data is itself JPEG at about quality 75.
"""
import io
import os
import sys

import numpy as np
from PIL import Image

NAMES = [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]


def main(src, dst, quality):
    os.makedirs(dst, exist_ok=True)
    for name in NAMES:
        records = np.fromfile(os.path.join(src, name), dtype=np.uint8).reshape(-1, 3073)
        out = records.copy()
        for row in out:
            image = Image.fromarray(row[1:].reshape(3, 32, 32).transpose(1, 2, 0))
            buffer = io.BytesIO()
            image.save(buffer, format="JPEG", quality=quality)
            decoded = np.asarray(Image.open(buffer).convert("RGB"), dtype=np.uint8)
            row[1:] = decoded.transpose(2, 0, 1).reshape(-1)
        out.tofile(os.path.join(dst, name))
        changed = np.abs(out[:, 1:].astype(int) - records[:, 1:]).mean()
        print(f"{name}: {len(out)} images, mean |change| {changed:.2f} grey levels", file=sys.stderr)


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]))
