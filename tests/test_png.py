"""The native PNG path (libspng through pyspng) is pixel-exact with Pillow, or steps aside.

``png.decode_png_gray`` must give, byte for byte, what Pillow's decode followed by
``images._to_gray_array`` gives, or None (then Pillow decodes the file, with every guard it
has). Checked on all 10,000 real test PNGs and on every kind of PNG the tests use. Without
pyspng, ``fashion-infer`` writes the same bytes.
"""

from __future__ import annotations

import io
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fashion_onnx.infer import png
from fashion_onnx.infer.images import MAX_PIXELS, _to_gray_array

pytestmark = pytest.mark.skipif(png.spng is None, reason="pyspng is not installed")


def pillow_gray(data: bytes) -> np.ndarray:
    """What the Pillow path makes of a PNG's bytes."""
    with Image.open(io.BytesIO(data)) as image:
        image.load()
        return _to_gray_array(image)


def native(data: bytes) -> np.ndarray | None:
    return png.decode_png_gray(data, MAX_PIXELS)


# -- PNGs written by hand: every depth, colour type, interlacing and chunk -----------------


def chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


ADAM7 = [
    (0, 0, 8, 8),
    (4, 0, 8, 8),
    (0, 4, 4, 8),
    (2, 0, 4, 4),
    (0, 2, 2, 4),
    (1, 0, 2, 2),
    (0, 1, 1, 2),
]


def encode(
    pixels: np.ndarray,
    *,
    interlace: bool = False,
    before_idat: tuple[bytes, ...] = (),
    color: int | None = None,
) -> bytes:
    """A PNG of ``pixels``: (h, w) gray or (h, w, 3) RGB, uint8 or uint16 (big-endian
    samples), Adam7-interlaced if asked, with ``before_idat`` chunks after IHDR."""
    height, width = pixels.shape[:2]
    depth = 16 if pixels.dtype == np.uint16 else 8
    if color is None:
        color = 0 if pixels.ndim == 2 else 2
    samples = pixels.astype(">u2") if depth == 16 else pixels

    def scanlines(image: np.ndarray) -> bytes:
        return b"".join(b"\x00" + row.tobytes() for row in image)

    if interlace:
        raw = b"".join(
            scanlines(samples[y0::dy, x0::dx])
            for x0, y0, dx, dy in ADAM7
            if samples[y0::dy, x0::dx].size
        )
    else:
        raw = scanlines(samples)
    header = struct.pack(">IIBBBBB", width, height, depth, color, 0, 0, int(interlace))
    return (
        png.SIGNATURE
        + chunk(b"IHDR", header)
        + b"".join(before_idat)
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


def noise(shape: tuple[int, ...], dtype: type, seed: int) -> np.ndarray:
    top = 65536 if dtype is np.uint16 else 256
    return np.random.default_rng(seed).integers(0, top, shape).astype(dtype)


ANCILLARY = (
    chunk(b"gAMA", struct.pack(">I", 45455)),
    chunk(b"pHYs", struct.pack(">IIB", 3780, 3780, 1)),
    chunk(b"tEXt", b"Comment\x00made by hand"),
)

# Each: the PNG's bytes; the native path must take it (pixels equal to Pillow's).
TAKEN = {
    "gray 8-bit 28x28": encode(noise((28, 28), np.uint8, 0)),
    "gray 8-bit 37x23": encode(noise((23, 37), np.uint8, 1)),
    "gray 16-bit": encode(noise((28, 28), np.uint16, 2)),
    "gray 16-bit, all 257 multiples and neighbours": encode(
        np.clip(np.arange(784, dtype=np.int64).reshape(28, 28) * 84 - 1, 0, 65535).astype(np.uint16)
    ),
    "RGB 8-bit": encode(noise((28, 28, 3), np.uint8, 3)),
    "RGB 8-bit 61x40": encode(noise((40, 61, 3), np.uint8, 4)),
    "RGB 16-bit": encode(noise((28, 28, 3), np.uint16, 5)),
    "gray 8-bit Adam7": encode(noise((28, 28), np.uint8, 6), interlace=True),
    "gray 16-bit Adam7 odd size": encode(noise((13, 9), np.uint16, 7), interlace=True),
    "RGB 8-bit Adam7": encode(noise((28, 28, 3), np.uint8, 8), interlace=True),
    "RGB 16-bit Adam7": encode(noise((30, 17, 3), np.uint16, 9), interlace=True),
    "gray with gAMA, pHYs, tEXt": encode(noise((28, 28), np.uint8, 10), before_idat=ANCILLARY),
    "RGB with gAMA, pHYs, tEXt": encode(noise((28, 28, 3), np.uint8, 11), before_idat=ANCILLARY),
}


def pillow_saved(image: Image.Image, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", **options)
    return buffer.getvalue()


def _pillow_made() -> dict[str, bytes]:
    gray = Image.fromarray(noise((28, 28), np.uint8, 20))
    rgb = Image.fromarray(noise((28, 28, 3), np.uint8, 21))
    return {
        "Pillow L": pillow_saved(gray),
        "Pillow L optimized": pillow_saved(gray, optimize=True),
        "Pillow RGB": pillow_saved(rgb),
        "Pillow I;16": pillow_saved(Image.fromarray(noise((28, 28), np.uint16, 22))),
    }


TAKEN.update(_pillow_made())


def _apng() -> bytes:
    frames = [Image.fromarray(noise((28, 28), np.uint8, s)) for s in (30, 31)]
    buffer = io.BytesIO()
    frames[0].save(buffer, format="PNG", save_all=True, append_images=frames[1:])
    data = buffer.getvalue()
    assert b"acTL" in data
    return data


def _bad_crc(data: bytes, kind: bytes) -> bytes:
    at = data.index(kind)
    (length,) = struct.unpack(">I", data[at - 4 : at])
    crc_at = at + 4 + length
    return data[:crc_at] + bytes(b ^ 0xFF for b in data[crc_at : crc_at + 4]) + data[crc_at + 4 :]


PLAIN = TAKEN["gray 8-bit 28x28"]

# Each: the PNG's bytes; the native path must step aside (None), and Pillow decides.
DECLINED = {
    "palette": pillow_saved(Image.fromarray(noise((28, 28), np.uint8, 40)).convert("P")),
    "palette with transparency": pillow_saved(
        Image.fromarray(noise((28, 28), np.uint8, 41)).convert("P"), transparency=3
    ),
    "gray with tRNS": pillow_saved(Image.fromarray(noise((28, 28), np.uint8, 42)), transparency=7),
    "RGB with tRNS": pillow_saved(
        Image.fromarray(noise((28, 28, 3), np.uint8, 43)), transparency=(1, 2, 3)
    ),
    "LA": pillow_saved(Image.fromarray(noise((28, 28, 2), np.uint8, 44), mode="LA")),
    "RGBA": pillow_saved(Image.fromarray(noise((28, 28, 4), np.uint8, 45))),
    "1-bit": pillow_saved(Image.fromarray(noise((28, 28), np.uint8, 46)).convert("1")),
    "APNG": _apng(),
    "IHDR CRC corrupted": _bad_crc(PLAIN, b"IHDR"),
    "gAMA CRC corrupted, before IDAT": _bad_crc(
        encode(noise((28, 28), np.uint8, 47), before_idat=ANCILLARY), b"gAMA"
    ),
    "tEXt CRC corrupted, before IDAT": _bad_crc(
        encode(noise((28, 28), np.uint8, 48), before_idat=ANCILLARY), b"tEXt"
    ),
    "truncated in IDAT": PLAIN[: len(PLAIN) // 2],
    "truncated after IHDR": PLAIN[:40],
    "IDAT data corrupted": PLAIN[:60] + bytes(b ^ 0x5A for b in PLAIN[60:80]) + PLAIN[80:],
    "not a PNG": b"GIF89a" + bytes(100),
    "empty": b"",
}


# Each: damage that Pillow lets pass (it does not check IDAT's CRC, nor need IEND): the
# native path may take it, then with Pillow's very pixels.
LENIENT = {
    "truncated, no IEND": PLAIN[:-12],
    "IDAT CRC corrupted": _bad_crc(PLAIN, b"IDAT"),
}


def test_all_10000_test_pngs_decode_as_pillow_decodes_them(test_pngs: list[bytes]) -> None:
    assert len(test_pngs) == 10_000
    for i, data in enumerate(test_pngs):
        got = native(data)
        assert got is not None, f"test PNG {i} was not taken natively"
        want = pillow_gray(data)
        assert got.dtype == want.dtype == np.uint8 and got.shape == want.shape == (28, 28)
        assert got.tobytes() == want.tobytes(), f"test PNG {i} differs"


@pytest.fixture(scope="session")
def test_pngs(test_set) -> list[bytes]:
    """The 10,000 real test images as PNG bytes, from Pillow's encoder (as ``samples/``
    and the benchmarks write them), made once per session."""
    return [pillow_saved(Image.fromarray(image)) for image in test_set[0]]


@pytest.mark.parametrize("kind", list(TAKEN))
def test_the_common_pngs_are_taken_natively_and_equal_pillows(kind: str) -> None:
    data = TAKEN[kind]
    got = native(data)
    assert got is not None, "the native path declined a common PNG"
    want = pillow_gray(data)
    assert got.dtype == np.uint8 and got.flags.c_contiguous
    assert got.shape == want.shape and got.tobytes() == want.tobytes()


@pytest.mark.parametrize("kind", list(DECLINED))
def test_anything_else_is_left_to_pillow(kind: str) -> None:
    data = DECLINED[kind]
    assert native(data) is None
    if "CRC" in kind or kind.startswith("truncated"):
        with pytest.raises((OSError, SyntaxError, ValueError)):  # Pillow refuses: no pixels
            pillow_gray(data)


@pytest.mark.parametrize("kind", list(LENIENT))
def test_what_pillow_lets_pass_is_its_pixels_or_left_to_it(kind: str) -> None:
    data = LENIENT[kind]
    want = pillow_gray(data)
    got = native(data)
    assert got is None or got.tobytes() == want.tobytes()


def test_more_pixels_than_allowed_are_left_to_pillows_guard() -> None:
    assert png.decode_png_gray(PLAIN, 28 * 28) is not None
    assert png.decode_png(PLAIN, 28 * 28 - 1) is None


# -- without the native decoder ---------------------------------------------------------

# fashion-infer with pyspng made unimportable, as on a platform without its wheel.
BLOCKED = """
import sys
class Blocker:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "pyspng":
            raise ModuleNotFoundError("No module named 'pyspng'", name=name)
        return None
sys.meta_path.insert(0, Blocker())
if sys.argv[1] == "--check":
    from fashion_onnx.infer import png
    assert png.spng is None
    raise SystemExit(0)
sys.argv[0] = "fashion-infer"
from fashion_onnx.infer.cli import main
main()
"""


@pytest.fixture(scope="session")
def png_folder(tmp_path_factory, test_pngs) -> Path:
    """300 real test PNGs, every kind above, and three bad files."""
    root = tmp_path_factory.mktemp("pngs")
    for i, data in enumerate(test_pngs[:300]):
        (root / f"{i:03d}.png").write_bytes(data)
    for i, data in enumerate(KINDS):
        (root / f"kind{i:02d}.png").write_bytes(data)
    return root


KINDS = [*TAKEN.values(), *DECLINED.values(), *LENIENT.values()]


def pillow_refuses(data: bytes) -> bool:
    try:
        pillow_gray(data)
    except Exception:
        return True
    return False


def test_without_pyspng_the_output_is_byte_identical(png_folder: Path) -> None:
    check = subprocess.run([sys.executable, "-c", BLOCKED, "--check"], capture_output=True)
    assert check.returncode == 0, check.stderr  # the blocker does block it
    args = [".", "--format", "csv", "--top-k", "10"]
    runs = {}
    for how, command in {
        "native": [sys.executable, "-m", "fashion_onnx.infer"],
        "pillow": [sys.executable, "-c", BLOCKED],
    }.items():
        result = subprocess.run(
            [*command, *args], capture_output=True, text=True, cwd=png_folder, timeout=120
        )
        assert "Traceback" not in result.stderr, result.stderr
        lines = result.stderr.splitlines()
        runs[how] = (result.returncode, result.stdout, sorted(lines[:-1]), lines[-1].split(",")[0])
    assert runs["pillow"] == runs["native"]
    code, rows, failures, summary = runs["native"]
    refused = [f"./kind{i:02d}.png" for i, data in enumerate(KINDS) if pillow_refuses(data)]
    assert code == 1 and [line.split(": ")[0] for line in failures] == refused
    assert summary.startswith(f"{300 + len(KINDS) - len(refused)} image(s) classified")
    assert len(rows.splitlines()) == 1 + 300 + len(KINDS) - len(refused)
