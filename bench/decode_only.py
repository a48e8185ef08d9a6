"""Baseline 3a: the decode-only limit. Pillow opens and converts every file, nothing else,
over a pool of the same size and start method (fork) that fashion-infer uses, in chunks
of 128 files; folders are walked recursively. Prints {"files"} as JSON.

Without --photos it reads the PNGs; with --photos (#30's speed target) every JPEG and PNG,
and a JPEG is decoded in draft mode, grayscale, at no fewer than 224 pixels a side, as
fashion-infer decoded photos before #30 (libjpeg shrinks it by 2, 4 or 8 on the way).
Run: python -m bench.decode_only DIR [--workers N] [--photos]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
from pathlib import Path

import numpy as np
from PIL import Image


def decode(paths: list[str]) -> int:
    for path in paths:
        with Image.open(path) as image:
            np.asarray(image.convert("L"))
    return len(paths)


def decode_drafted(paths: list[str]) -> int:
    for path in paths:
        with Image.open(path) as image:
            if image.format == "JPEG":
                image.draft("L", (224, 224))
            np.asarray(image.convert("L"))
    return len(paths)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("folder", type=Path)
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--photos", action="store_true", help="JPEG and PNG, JPEGs drafted")
    args = parser.parse_args()
    suffixes = (".png", ".jpg") if args.photos else (".png",)
    paths = [
        os.path.join(root, name)
        for root, _, names in os.walk(args.folder)
        for name in names
        if name.endswith(suffixes)
    ]
    chunks = [paths[i : i + 128] for i in range(0, len(paths), 128)]
    with mp.get_context("fork").Pool(args.workers) as pool:
        done = sum(pool.imap(decode_drafted if args.photos else decode, chunks))
    print(json.dumps({"files": done}))


if __name__ == "__main__":
    main()
