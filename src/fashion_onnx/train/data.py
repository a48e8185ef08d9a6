"""Find real FashionMNIST offline and hold it in memory as uint8 tensors.

Order of search, first hit wins:
1. torchvision's raw files already under ``DATA_DIR/FashionMNIST/raw``;
2. Debian's ``dataset-fashion-mnist`` package (``/usr/share/datasets/fashion-mnist/*.gz``),
   unpacked into that raw folder (IDX headers checked);
3. torchvision's download.
"""

from __future__ import annotations

import contextlib
import gzip
import socket
from dataclasses import dataclass
from pathlib import Path

import torch
from torchvision.datasets import FashionMNIST

from fashion_onnx.errors import DataNotFoundError
from fashion_onnx.fashion_mnist import check_idx, default_data_dir, default_debian_dir, raw_dir
from fashion_onnx.fileio import atomic_path

DOWNLOAD_TIMEOUT_S = 20.0


@dataclass(frozen=True)
class FashionData:
    """Both splits as tensors. Images stay uint8 (47 MB in all); scale per batch."""

    train_images: torch.Tensor  # (60000, 28, 28) uint8
    train_labels: torch.Tensor  # (60000,) int64
    test_images: torch.Tensor  # (10000, 28, 28) uint8
    test_labels: torch.Tensor  # (10000,) int64
    source: str  # where the raw files came from: "data-dir", "debian" or "download"


def _raw_names() -> list[tuple[str, str]]:
    """(gz file name, md5) pairs from torchvision's own list."""
    return list(FashionMNIST.resources)


def _have_raw(data_dir: Path) -> bool:
    raw = raw_dir(data_dir)
    return all((raw / gz.removesuffix(".gz")).is_file() for gz, _ in _raw_names())


def _unpack_debian(data_dir: Path, debian_dir: Path) -> bool:
    """Unpack Debian's .gz files into torchvision's raw layout. False if they are not there."""
    # Debian recompressed the archives, so torchvision's md5 of the .gz does not apply;
    # the IDX headers are checked instead.
    sources = [(debian_dir / gz, md5) for gz, md5 in _raw_names()]
    if not all(src.is_file() for src, _ in sources):
        return False
    for src, _ in sources:
        name = src.name.removesuffix(".gz")
        raw = gzip.decompress(src.read_bytes())
        check_idx(name, raw, src)
        with atomic_path(raw_dir(data_dir) / name) as tmp:
            tmp.write_bytes(raw)
    return True


def _download(data_dir: Path) -> str | None:
    """torchvision's download into ``data_dir``; None when it worked, else why not, in
    one line: the exception's first line and, when it has more (torchvision lists each
    mirror tried, then its error), its last."""
    old = socket.getdefaulttimeout()
    socket.setdefaulttimeout(DOWNLOAD_TIMEOUT_S)
    try:
        FashionMNIST(str(data_dir), train=True, download=True)
        FashionMNIST(str(data_dir), train=False, download=True)
    except (RuntimeError, OSError) as exc:
        lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
        if not lines:
            return type(exc).__name__
        return lines[0] if len(lines) == 1 else f"{lines[0].rstrip(':')}: {lines[-1]}"
    finally:
        socket.setdefaulttimeout(old)
    return None if _have_raw(data_dir) else "the downloaded files are incomplete"


def _missing_dirs(data_dir: Path) -> list[Path]:
    """The folders of ``DATA_DIR/FashionMNIST/raw`` that do not exist yet, deepest first."""
    chain = [raw_dir(data_dir), raw_dir(data_dir).parent, data_dir]
    return [d for d in chain if not d.exists()]


def ensure_raw_files(
    data_dir: Path | None = None, *, debian_dir: Path | None = None, download: bool = True
) -> tuple[Path, str]:
    """Make sure torchvision's raw files exist under ``data_dir``.

    Folders it creates for them are removed again if it fails while they are empty.

    Returns:
        (data_dir, source) with source one of "data-dir", "debian", "download".

    Raises:
        DataNotFoundError: none of the three ways worked; the message names the ways
            (the download's only when ``download`` is on) and why the download failed.
    """
    data_dir = Path(data_dir) if data_dir is not None else default_data_dir()
    debian_dir = Path(debian_dir) if debian_dir is not None else default_debian_dir()
    if _have_raw(data_dir):
        return data_dir, "data-dir"
    created = _missing_dirs(data_dir)
    try:
        if _unpack_debian(data_dir, debian_dir):
            return data_dir, "debian"
        failure = _download(data_dir) if download else None
        if download and failure is None:
            return data_dir, "download"
    except BaseException:
        _remove_if_empty(created)
        raise
    _remove_if_empty(created)
    local_ways = (
        "  apt-get install dataset-fashion-mnist  # Debian's package, used automatically\n"
        "  fashion-train --data-dir DIR           # DIR/FashionMNIST/raw holds the IDX files"
    )
    if download:
        looked = f", and torchvision's download failed: {failure}"
        ways = (
            f"Get it one of three ways:\n{local_ways}\n"
            "  # or: an internet connection for torchvision's download"
        )
    else:
        looked = " (no download: --no-download)"
        ways = f"Get it one of two ways:\n{local_ways}"
    raise DataNotFoundError(
        f"FashionMNIST not found. Looked in {raw_dir(data_dir)} and {debian_dir}{looked}.\n{ways}"
    )


def _remove_if_empty(folders: list[Path]) -> None:
    for folder in folders:  # deepest first
        with contextlib.suppress(OSError):  # not empty, or already gone: leave it
            folder.rmdir()


def load_fashion_mnist(
    data_dir: Path | None = None, *, debian_dir: Path | None = None, download: bool = True
) -> FashionData:
    """Load both splits into memory (see ``ensure_raw_files`` for where they come from)."""
    root, source = ensure_raw_files(data_dir, debian_dir=debian_dir, download=download)
    train = FashionMNIST(str(root), train=True, download=False)
    test = FashionMNIST(str(root), train=False, download=False)
    return FashionData(
        train_images=train.data,
        train_labels=train.targets.long(),
        test_images=test.data,
        test_labels=test.targets.long(),
        source=source,
    )


def to_input(images: torch.Tensor) -> torch.Tensor:
    """uint8 (N, 28, 28) -> float32 (N, 1, 28, 28) in [0, 1], exactly what ToTensor gives."""
    return images.unsqueeze(1).to(torch.float32).div_(255.0)
