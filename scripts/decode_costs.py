"""Where a worker's decode time goes, per 28x28 PNG: reading the file, libspng's decode,
zlib's inflate of the pixels alone, and the whole decode step (``decode_chunk``) on chunks
of 512, as the workers run it. CPU time of this process, best of 3 rounds.

    python scripts/decode_costs.py [FOLDER]   # default: the bench's 10,000 test PNGs

Not part of ``make bench``: it explains the workers' row of its Performance table.
"""

from __future__ import annotations

import struct
import sys
import time
import zlib
from collections.abc import Callable
from pathlib import Path

from fashion_onnx.infer.decode import decode_chunk
from fashion_onnx.infer.images import read_file
from fashion_onnx.infer.png import spng
from fashion_onnx.infer.prepare import Preparation

ROOT = Path(__file__).resolve().parent.parent


def best_us(step: Callable[[], object], count: int) -> float:
    best = float("inf")
    for _ in range(3):
        started = time.process_time()
        step()
        best = min(best, time.process_time() - started)
    return 1e6 * best / count


def main() -> None:
    folder = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "bench" / "work" / "png"
    files = sorted(str(p) for p in folder.glob("*.png"))[:4096]
    if not files or spng is None:
        raise SystemExit(f"needs PNGs in {folder} (run make bench once) and pyspng")
    datas = [read_file(f) for f in files]
    idat = []
    for data in datas:  # the files the bench writes: IHDR, then one IDAT
        (length,) = struct.unpack_from(">I", data, 33)
        idat.append(data[41 : 41 + length])
    chunks = [files[i : i + 512] for i in range(0, len(files), 512)]
    preparation = Preparation()
    rows = {
        "read (open, read, close)": lambda: [read_file(f) for f in files],
        "libspng decode, from bytes": lambda: [
            spng.spng_decode_image_bytes(d, spng.SPNG_FMT_AUTO) for d in datas
        ],
        "zlib inflate of the pixels alone": lambda: [zlib.decompress(i) for i in idat],
        "decode_chunk (read, decode, checks)": lambda: [
            decode_chunk(c, preparation) for c in chunks
        ],
    }
    print(f"{len(files)} PNGs from {folder}, us per image (CPU):")
    for name, step in rows.items():
        print(f"  {name:<38} {best_us(step, len(files)):6.2f}")


if __name__ == "__main__":
    main()
