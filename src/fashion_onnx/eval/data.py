"""What ``fashion-eval`` evaluates on: the real test set, a folder with ``labels.csv``, or
arrays with labels."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fashion_onnx.constants import CLASS_NAMES
from fashion_onnx.errors import DataNotFoundError, InvalidArgumentError
from fashion_onnx.fashion_mnist import load_split


@dataclass(frozen=True)
class Labelled:
    """Images and their true labels. ``images`` are uint8 (N, 28, 28) light on dark, or
    None for a folder (then ``paths`` are classified as fashion-infer would)."""

    name: str  # what the data is, for the report
    labels: np.ndarray  # (N,) int64 class indices
    images: np.ndarray | None = None
    paths: tuple[str, ...] = ()

    @property
    def is_test_set(self) -> bool:
        return self.name == TEST_SET


TEST_SET = "FashionMNIST test set (10,000 real images)"


def test_set(data_dir: Path | None = None) -> Labelled:
    """The real test set from its IDX files.

    Raises:
        DataNotFoundError: the files are not found.
    """
    images, labels = load_split("test", data_dir)
    return Labelled(TEST_SET, labels.astype(np.int64), images)


def _class_index(name: str, where: str) -> int:
    canonical = {n.lower(): i for i, n in enumerate(CLASS_NAMES)}
    if name.strip().lower() not in canonical:
        raise InvalidArgumentError(
            f"{where}: {name!r} is not a class; the classes are {', '.join(CLASS_NAMES)}"
        )
    return canonical[name.strip().lower()]


def folder(path: Path) -> Labelled:
    """A folder holding images and a ``labels.csv`` with ``file`` and ``class`` columns
    (paths relative to the folder, class names in any case, as fashion-infer's --labels).

    Raises:
        DataNotFoundError: no labels.csv in the folder.
        InvalidArgumentError: a malformed CSV, an unknown class, or no rows.
    """
    csv_path = path / "labels.csv"
    if not csv_path.is_file():
        raise DataNotFoundError(f"{path}: no labels.csv (columns file,class) in the folder")
    with csv_path.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    if not rows or not {"file", "class"} <= set(rows[0]):
        raise InvalidArgumentError(f"{csv_path}: expected rows with file and class columns")
    paths = tuple(str(path / r["file"]) for r in rows)
    labels = np.array(
        [_class_index(r["class"], f"{csv_path} row {n + 2}") for n, r in enumerate(rows)]
    )
    return Labelled(f"{path} ({len(rows)} images, labels.csv)", labels, None, paths)


def arrays(images_path: Path, labels_path: Path | None) -> Labelled:
    """An array file as ``fashion-infer`` reads it (``infer.arrays``: IDX, ``.npy`` or
    ``.npz``; uint8 or floats in [0, 1]; light garment on dark) and its labels: an
    ``.npz``'s own ``labels`` array, or ``labels_path`` (an IDX label file, a ``.npy`` or
    an ``.npz`` with ``labels``), one per image, in order.

    Raises:
        InvalidArgumentError: missing labels, a layout that is no image batch, or as many
            labels as images they are not.
    """
    from fashion_onnx.infer.arrays import (
        check_label_count,
        npz_labels,
        read_images,
        read_labels_array,
    )

    images = read_images(str(images_path))
    if labels_path is not None:
        labels = read_labels_array(str(labels_path))
        where = f"--labels {labels_path}"
    else:
        inside = npz_labels(str(images_path)) if images_path.suffix == ".npz" else None
        if inside is None:
            raise InvalidArgumentError(
                f"{images_path}: give its labels with --labels FILE (an IDX label file, a "
                ".npy of class indices, or an .npz with labels)"
            )
        labels, where = inside, str(images_path)
    check_label_count(len(labels), len(images), where)
    return Labelled(f"{images_path} ({len(images)} images)", labels, images)


def load(spec: Path | None, labels: Path | None = None, data_dir: Path | None = None) -> Labelled:
    """DATA as given on the command line: None for the test set, a folder, or arrays.

    Raises:
        DataNotFoundError: the test set or a labels.csv is not found, or no such path.
        InvalidArgumentError: see ``folder`` and ``arrays``.
    """
    if spec is None:
        return test_set(data_dir)
    if spec.is_dir():
        return folder(spec)
    if not spec.is_file():
        raise DataNotFoundError(f"{spec}: no such file or folder")
    from fashion_onnx.infer.arrays import is_array_file

    if not is_array_file(str(spec)):
        raise InvalidArgumentError(
            f"{spec}: give a folder with labels.csv, or an array file (IDX, .npy or .npz)"
        )
    return arrays(spec, labels)
