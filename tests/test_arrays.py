"""Image arrays as inputs (IDX, gzipped or not, .npy, .npz), run as a user runs them: the
real command in a subprocess, and ``Classifier.classify_files``, against
``Classifier.predict`` on the same arrays."""

from __future__ import annotations

import gzip
import json
import os
import re
import struct
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from fashion_onnx.infer import Classifier

ROOT = Path(__file__).resolve().parent.parent
DATA = Path("/usr/share/datasets/fashion-mnist")
IMAGES_GZ = DATA / "t10k-images-idx3-ubyte.gz"
LABELS_GZ = DATA / "t10k-labels-idx1-ubyte.gz"
N = 300  # more than the 256 below which no worker process is started


def fashion_infer(*args: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """The real command, in a process of its own."""
    command = [sys.executable, "-m", "fashion_onnx.infer", *map(str, args)]
    return subprocess.run(command, capture_output=True, text=True, cwd=cwd, timeout=300)


def one_error_line(result: subprocess.CompletedProcess[str]) -> str:
    """Exit 2, one ``error:`` line on stderr and nothing on stdout: refused, never run."""
    assert result.returncode == 2, (result.returncode, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert result.stdout == "", result.stdout[:300]
    return lines[0]


def jsonl_rows(result: subprocess.CompletedProcess[str]) -> tuple[list[str], np.ndarray]:
    """(the row names, their probabilities (n, 10) in class order), from ``--top-k 10``."""
    assert result.returncode == 0, result.stderr
    names, probs = [], []
    for line in result.stdout.splitlines():
        row = json.loads(line)
        names.append(row["path"])
        by_label = {t["label"]: t["probability"] for t in row["top_k"]}
        probs.append([by_label[k] for k in range(10)])
    return names, np.array(probs)


def model_card_accuracy(model: str) -> str:
    """The README model card's test accuracy for ``model`` ("90.37")."""
    readme = (ROOT / "README.md").read_text()
    header = re.search(r"^\| \| `mlp` \(the default\) \| `cnn` \|$", readme, re.M)
    row = re.search(r"^\| test accuracy \(10,000 real test images\) \| (.*)$", readme, re.M)
    assert header and row, "the README's model card table"
    cells = [cell.strip() for cell in row.group(1).split("|")]
    return re.match(r"([\d.]+)%", cells[["mlp", "cnn"].index(model)]).group(1)


def idx_bytes(images: np.ndarray) -> bytes:
    return struct.pack(">IIII", 0x803, len(images), 28, 28) + images.astype(np.uint8).tobytes()


def idx_labels_bytes(labels: np.ndarray) -> bytes:
    return struct.pack(">II", 0x801, len(labels)) + labels.astype(np.uint8).tobytes()


# -- the files: each an array input, the rows it names and the images behind them --------


@pytest.fixture(scope="session")
def subset(test_set) -> tuple[np.ndarray, np.ndarray]:
    return test_set[0][:N], test_set[1][:N]


Writer = Callable[[Path, np.ndarray], dict[str, np.ndarray]]  # -> {row prefix: images}


def _npy(shape: Callable[[np.ndarray], np.ndarray]) -> Writer:
    def write(path: Path, images: np.ndarray) -> dict[str, np.ndarray]:
        np.save(path, shape(images))
        return {str(path): images}

    return write


def _idx(path: Path, images: np.ndarray) -> dict[str, np.ndarray]:
    path.write_bytes(idx_bytes(images))
    return {str(path): images}


def _idx_gz(path: Path, images: np.ndarray) -> dict[str, np.ndarray]:
    path.write_bytes(gzip.compress(idx_bytes(images)))
    return {str(path): images}


def _npz(save: Callable[..., None]) -> Writer:
    def write(path: Path, images: np.ndarray) -> dict[str, np.ndarray]:
        parts = {  # several arrays, of several shapes and dtypes, in this order
            "first": images[:100],
            "flat": images[100:200].reshape(-1, 784),
            "floats": (images[200:] / 255).astype(np.float32)[:, None],
        }
        save(path, **parts)
        return {
            f"{path}:first": images[:100],
            f"{path}:flat": images[100:200],
            f"{path}:floats": (images[200:] / 255).astype(np.float32),
        }

    return write


KINDS: dict[str, tuple[str, Writer]] = {
    "idx": ("images-idx3-ubyte", _idx),
    "idx.gz": ("images-idx3-ubyte.gz", _idx_gz),
    "npy [N,28,28]": ("a.npy", _npy(lambda x: x)),
    "npy [N,784]": ("b.npy", _npy(lambda x: x.reshape(len(x), 784))),
    "npy [N,1,28,28]": ("c.npy", _npy(lambda x: x[:, None])),
    "npy float32": ("d.npy", _npy(lambda x: (x / 255).astype(np.float32))),
    "npy float64 [N,784]": ("e.npy", _npy(lambda x: (x / 255).reshape(len(x), 784))),
    "npz stored": ("f.npz", _npz(np.savez)),
    "npz compressed": ("g.npz", _npz(np.savez_compressed)),
}


def expected(parts: dict[str, np.ndarray]) -> tuple[list[str], np.ndarray]:
    """The rows an array file should give: its names, and predict's probabilities."""
    classifier = Classifier(device="cpu")
    names = [f"{prefix}[{i}]" for prefix, images in parts.items() for i in range(len(images))]
    probs = np.concatenate([classifier.predict(images).probabilities for images in parts.values()])
    return names, probs


@pytest.mark.parametrize("kind", list(KINDS))
def test_each_image_is_a_row_with_predicts_probabilities(kind, subset, tmp_path) -> None:
    name, write = KINDS[kind]
    parts = write(tmp_path / name, subset[0])
    want_names, want = expected(parts)
    result = fashion_infer(tmp_path / name, "--format", "jsonl", "--top-k", "10")
    names, probs = jsonl_rows(result)
    assert names == want_names  # FILE[i] (FILE:ARRAY[i]), 0-based, in order
    assert np.abs(probs - want).max() <= 1e-6 + 5e-7  # the CLI rounds to 6 decimals
    assert f"{N} image(s) classified, 0 failed" in result.stderr
    # the Python API, with worker processes and here, gives the probabilities themselves
    for workers in (2, 1):
        batches = list(Classifier(device="cpu").classify_files(tmp_path / name, workers=workers))
        assert [p for b in batches for p in b.paths] == want_names
        assert not [f for b in batches for f in b.failures]
        got = np.concatenate([b.probabilities for b in batches])
        assert np.abs(got - want).max() <= 1e-6


def test_several_array_files_and_images_keep_the_input_order(subset, tmp_path) -> None:
    images = subset[0]
    np.save(tmp_path / "a.npy", images[:10])
    (tmp_path / "b-ubyte").write_bytes(idx_bytes(images[10:20]))
    np.savez(tmp_path / "c.npz", x=images[20:30], y=images[30:40])
    from PIL import Image

    Image.fromarray(images[40]).save(tmp_path / "one.png")
    inputs = ["a.npy", "one.png", "b-ubyte", "c.npz"]
    result = fashion_infer(*inputs, "--format", "csv", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    names = [line.split(",")[0] for line in result.stdout.splitlines()[1:]]
    assert names == [
        *(f"a.npy[{i}]" for i in range(10)),
        "one.png",
        *(f"b-ubyte[{i}]" for i in range(10)),
        *(f"c.npz:x[{i}]" for i in range(10)),
        *(f"c.npz:y[{i}]" for i in range(10)),
    ]
    want = Classifier(device="cpu").predict(
        np.concatenate([images[:10], images[40:41], images[10:40]])
    )
    labels = [int(line.split(",")[1]) for line in result.stdout.splitlines()[1:]]
    assert labels == want.labels.tolist()


# -- the real test set, as Debian ships it -------------------------------------------


@pytest.mark.parametrize("model", ["mlp", "cnn"])
def test_the_real_test_set_scores_the_model_cards_accuracy(model, test_set) -> None:
    card = model_card_accuracy(model)  # "90.37"
    right = round(float(card) * 100)  # of 10,000
    predicted = Classifier(model, device="cpu").predict(test_set[0]).labels
    assert int((predicted == test_set[1]).sum()) == right  # the card holds for these arrays
    result = fashion_infer(IMAGES_GZ, "--labels", LABELS_GZ, "--model", model, "--format", "csv")
    assert result.returncode == 0, result.stderr
    assert "10000 image(s) classified, 0 failed" in result.stderr
    assert f"correct: {right}/10000 ({float(card):.1f}%)" in result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("path,label,")
    rows = [line.split(",") for line in lines[1:]]
    assert [r[0] for r in rows] == [f"{IMAGES_GZ}[{i}]" for i in range(10_000)]
    assert [int(r[1]) for r in rows] == predicted.tolist()


def test_invert_auto_flips_no_real_image_and_always_flips_all(test_set, subset, tmp_path) -> None:
    """Arrays are taken in FashionMNIST's polarity; ``auto`` looks at each image as it does
    for files, and no image of the real test set has a light background."""
    runs = {}
    for invert in ("auto", "never"):
        batches = Classifier(device="cpu", invert=invert).classify_files(IMAGES_GZ, workers=2)
        runs[invert] = np.concatenate([b.probabilities for b in batches])
    assert len(runs["auto"]) == 10_000
    assert np.array_equal(runs["auto"], runs["never"])
    np.save(tmp_path / "x.npy", subset[0])
    flipped = Classifier(device="cpu", invert="never").predict(255 - subset[0]).probabilities
    _, always = jsonl_rows(
        fashion_infer(
            tmp_path / "x.npy", "--invert", "always", "--format", "jsonl", "--top-k", "10"
        )
    )
    assert np.abs(always - flipped).max() <= 1e-6 + 5e-7
    # a light-background array (a negative) is flipped back by auto, as a file would be
    np.save(tmp_path / "negative.npy", 255 - subset[0])
    _, auto = jsonl_rows(
        fashion_infer(tmp_path / "negative.npy", "--format", "jsonl", "--top-k", "10")
    )
    plain = Classifier(device="cpu").predict(subset[0]).probabilities
    assert np.abs(auto - plain).max() <= 1e-6 + 5e-7


# -- --labels --------------------------------------------------------------------------


@pytest.mark.parametrize("form", ["idx", "idx.gz", "npy"])
def test_labels_from_an_idx_file_or_a_npy(form, subset, tmp_path) -> None:
    images, labels = subset
    np.save(tmp_path / "x.npy", images)
    path = tmp_path / {"idx": "l-idx1-ubyte", "idx.gz": "l-idx1-ubyte.gz", "npy": "l.npy"}[form]
    if form == "npy":
        np.save(path, labels.astype(np.int64))
    else:
        data = idx_labels_bytes(labels)
        path.write_bytes(gzip.compress(data) if form == "idx.gz" else data)
    right = int((Classifier(device="cpu").predict(images).labels == labels).sum())
    result = fashion_infer(tmp_path / "x.npy", "--labels", path, "--format", "csv")
    assert result.returncode == 0, result.stderr
    assert f"correct: {right}/{N} (" in result.stderr
    assert "," in result.stdout.splitlines()[1]


def test_a_label_file_with_the_wrong_magic_is_refused(subset, tmp_path) -> None:
    np.save(tmp_path / "x.npy", subset[0])
    bad = tmp_path / "l-idx1-ubyte"
    bad.write_bytes(struct.pack(">II", 0x803, N) + subset[1].tobytes())  # an images magic
    line = one_error_line(fashion_infer(tmp_path / "x.npy", "--labels", bad))
    assert str(bad) in line and "magic" in line


@pytest.mark.parametrize("count", [100, 2 * N])
def test_labels_by_position_must_be_one_per_image_in_infer_and_eval(count, subset, tmp_path):
    """Too few labels once judged the first 100 rows without a word, too many were taken;
    fashion-eval refused both. Now both refuse with the same line."""
    images, labels = subset
    np.save(tmp_path / "x.npy", images)
    path = tmp_path / "l-idx1-ubyte"
    path.write_bytes(idx_labels_bytes(np.resize(labels, count)))
    line = one_error_line(fashion_infer(tmp_path / "x.npy", "--labels", path))
    assert line == (
        f"error: --labels {path}: {count:,} labels for {N:,} array images; labels are matched "
        "to the images in order, so there must be one per image"
    )
    evaluated = subprocess.run(
        [sys.executable, "-m", "fashion_onnx.eval", str(tmp_path / "x.npy"), "--labels", str(path)],
        capture_output=True,
        text=True,
    )
    assert evaluated.returncode == 2 and evaluated.stderr.strip() == line


def test_infer_and_eval_read_the_same_array_layouts(subset, tmp_path) -> None:
    """One reader: an .npz with images and labels (eval's layout) is classified and judged
    by fashion-infer; IDX files and float arrays (infer's) are evaluated by fashion-eval;
    both count the same right answers."""
    images, labels = subset
    right = int((Classifier(device="cpu").predict(images).labels == labels).sum())
    np.savez(tmp_path / "set.npz", images=images, labels=labels)
    inferred = fashion_infer(tmp_path / "set.npz", "--format", "csv")
    assert inferred.returncode == 0, inferred.stderr
    assert len(inferred.stdout.splitlines()) == N + 1  # the labels are not rows
    assert f"correct: {right}/{N} (" in inferred.stderr
    (tmp_path / "i-idx3-ubyte").write_bytes(idx_bytes(images))
    (tmp_path / "l-idx1-ubyte").write_bytes(idx_labels_bytes(labels))
    np.save(tmp_path / "floats.npy", images.astype(np.float32) / 255)
    for data, extra in (
        ("set.npz", []),
        ("i-idx3-ubyte", ["--labels", "l-idx1-ubyte"]),
        ("floats.npy", ["--labels", "l-idx1-ubyte"]),
    ):
        evaluated = subprocess.run(
            [sys.executable, "-m", "fashion_onnx.eval", data, *extra, "--json", "--no-speed"],
            capture_output=True,
            text=True,
            cwd=tmp_path,
        )
        assert evaluated.returncode == 0, (data, evaluated.stderr)
        report = json.loads(evaluated.stdout)
        assert report["images"] == N and round(report["top1"] * N) == right, data


# -- bad array files: one line, exit 2, nothing run ------------------------------------


def _truncated_npy(path: Path, images: np.ndarray) -> None:
    np.save(path, images)
    path.write_bytes(path.read_bytes()[:-100])


def _truncated_idx(path: Path, images: np.ndarray) -> None:
    path.write_bytes(idx_bytes(images)[:-100])


def _truncated_gz(path: Path, images: np.ndarray) -> None:
    data = gzip.compress(idx_bytes(images))
    path.write_bytes(data[: len(data) // 2])


def _short_gz_stream(path: Path, images: np.ndarray) -> None:
    """A whole gzip stream whose header promises more images than it holds."""
    data = idx_bytes(images)
    path.write_bytes(
        gzip.compress(struct.pack(">IIII", 0x803, len(images) + 5, 28, 28) + data[16:])
    )


def _wrong_magic(path: Path, images: np.ndarray) -> None:
    path.write_bytes(struct.pack(">IIII", 0x801, len(images), 28, 28) + images.tobytes())


def _objects(path: Path, images: np.ndarray) -> None:
    np.save(path, np.array([images[0], "not pixels"], dtype=object), allow_pickle=True)


def _floats_outside(path: Path, images: np.ndarray) -> None:
    np.save(path, images.astype(np.float32))  # 0..255, not divided


def _nan(path: Path, images: np.ndarray) -> None:
    floats = (images / 255).astype(np.float32)
    floats[-1, 5, 5] = np.nan
    np.save(path, floats)


def _corrupt(save: Callable[..., None], dtype: type) -> Callable[[Path, np.ndarray], None]:
    """An .npz whose compressed bytes do not inflate (they pass the zip's own checks)."""

    def write(path: Path, images: np.ndarray) -> None:
        save(path, a=(images / 255).astype(dtype) if dtype is np.float32 else images)
        data = bytearray(path.read_bytes())
        data[2000:2100] = bytes(b ^ 0x55 for b in data[2000:2100])
        path.write_bytes(bytes(data))

    return write


BAD: dict[str, tuple[str, Callable[[Path, np.ndarray], None], str]] = {
    "wrong magic": ("x-idx3-ubyte", _wrong_magic, "magic number 0x00000801"),
    "wrong magic, gz": (
        "x-idx3-ubyte.gz",
        lambda p, x: p.write_bytes(
            gzip.compress(struct.pack(">IIII", 0x801, len(x), 28, 28) + x.tobytes())
        ),
        "magic number",
    ),
    "idx 32x32": (
        "y-idx3-ubyte",
        lambda p, x: p.write_bytes(struct.pack(">IIII", 0x803, 1, 32, 32) + bytes(1024)),
        "32x32",
    ),
    "truncated npy": ("t.npy", _truncated_npy, "truncated"),
    "truncated idx": ("t-idx3-ubyte", _truncated_idx, "truncated"),
    "truncated gz": ("t-idx3-ubyte.gz", _truncated_gz, "truncated"),
    "gz shorter than its header": ("s-idx3-ubyte.gz", _short_gz_stream, "truncated"),
    "object npy": ("o.npy", _objects, "object"),
    "shape [N,28,27]": ("s.npy", lambda p, x: np.save(p, x[:, :, :27]), "shape [300, 28, 27]"),
    "shape [N,2,28,28]": (
        "s.npy",
        lambda p, x: np.save(p, np.stack([x, x], 1)),
        "shape [300, 2, 28, 28]",
    ),
    "shape [28,28]": ("s.npy", lambda p, x: np.save(p, x[0]), "shape [28, 28]"),
    "dtype int64": ("i.npy", lambda p, x: np.save(p, x.astype(np.int64)), "dtype int64"),
    "dtype uint16": ("i.npy", lambda p, x: np.save(p, x.astype(np.uint16)), "dtype uint16"),
    "floats 0..255": ("f.npy", _floats_outside, "[0, 1]"),
    "a NaN in the last image": ("n.npy", _nan, "[0, 1]"),
    "npz with an object array": (
        "o.npz",
        lambda p, x: np.savez(p, a=x, b=np.array([None, 1], dtype=object)),
        "object",
    ),
    "npz with no arrays": ("e.npz", lambda p, x: np.savez(p), "no arrays"),
    "npz, corrupt deflate": ("c.npz", _corrupt(np.savez_compressed, np.uint8), "corrupt"),
    "npz, corrupt deflate, floats": ("c.npz", _corrupt(np.savez_compressed, np.float32), "corrupt"),
    "not an npz": (
        "z.npz",
        lambda p, x: p.write_bytes(b"PK\x03\x04 not a zip"),
        "not a readable .npz",
    ),
    "not an npy": (
        "z.npy",
        lambda p, x: p.write_bytes(b"\x93NUMPY garbage"),
        "not a readable .npy",
    ),
}


@pytest.mark.parametrize("case", list(BAD))
def test_a_bad_array_file_is_refused_with_one_line(case, subset, tmp_path) -> None:
    name, write, reason = BAD[case]
    write(tmp_path / name, subset[0])
    np.save(tmp_path / "good.npy", subset[0])
    # a good array first: nothing of it is written either
    line = one_error_line(fashion_infer(tmp_path / "good.npy", tmp_path / name, "--format", "csv"))
    assert str(tmp_path / name) in line and reason in line, line


def test_the_api_raises_one_typed_error_for_a_bad_array(subset, tmp_path) -> None:
    from fashion_onnx.infer.arrays import ArrayInputError

    _objects(tmp_path / "o.npy", subset[0])
    with pytest.raises(ArrayInputError, match="object"):
        list(Classifier(device="cpu").classify_files(tmp_path / "o.npy"))


def test_an_object_npy_is_never_unpickled(tmp_path) -> None:
    """A pickle that would run code if loaded with allow_pickle=True, as --labels too."""
    marker = tmp_path / "ran"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    np.save(tmp_path / "evil.npy", np.array([Evil()], dtype=object), allow_pickle=True)
    np.save(tmp_path / "x.npy", np.zeros((1, 28, 28), np.uint8))
    one_error_line(fashion_infer(tmp_path / "evil.npy"))
    one_error_line(fashion_infer(tmp_path / "x.npy", "--labels", tmp_path / "evil.npy"))
    assert not marker.exists()


def test_arrays_are_refused_on_ray_with_one_line(subset, tmp_path) -> None:
    np.save(tmp_path / "x.npy", subset[0][:3])
    line = one_error_line(fashion_infer(tmp_path / "x.npy", "--engine", "ray"))
    assert "--engine local" in line


# -- memory: memory-mapped, never read whole -------------------------------------------

BIG = 400_000  # images: 299 MiB of pixels

# Runs fashion-infer and, as it exits, writes its peak RSS (KiB) as the last stderr line:
# the largest of its own high-water mark (which exec resets) and its reaped workers'. The
# child's ru_maxrss from wait4 would not do: it carries the test process's own peak from
# before the exec.
PEAK = """
import os, resource, sys
def report(code, _exit=os._exit):
    own = int(open("/proc/self/status").read().split("VmHWM:")[1].split()[0])
    workers = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    sys.stderr.write(f"peak {max(own, workers)}\\n")
    sys.stderr.flush()
    _exit(code)
os._exit = report
sys.argv[0] = "fashion-infer"
from fashion_onnx.infer.cli import main
main()
"""


@pytest.mark.slow
def test_a_npy_larger_than_the_memory_allowed_is_streamed(test_set, tmp_path) -> None:
    path = tmp_path / "big.npy"
    big = np.lib.format.open_memmap(path, mode="w+", dtype=np.uint8, shape=(BIG, 28, 28))
    for start in range(0, BIG, 10_000):  # written in pieces: this test never holds it
        big[start : start + 10_000] = test_set[0][: min(10_000, BIG - start)]
    big.flush()
    del big
    size = path.stat().st_size
    try:
        with open(tmp_path / "out.csv", "wb") as out:
            result = subprocess.run(
                [sys.executable, "-c", PEAK, str(path), "--format", "csv"],
                stdout=out,
                stderr=subprocess.PIPE,
                text=True,
                timeout=300,
            )
        assert result.returncode == 0, result.stderr
        assert f"{BIG} image(s) classified, 0 failed" in result.stderr
        peak = int(result.stderr.splitlines()[-1].removeprefix("peak ")) * 1024
        assert peak < size / 2, f"peak RSS {peak / 2**20:.0f} MiB, {size / 2**20:.0f} MiB array"
        with open(tmp_path / "out.csv") as rows:
            assert sum(1 for _ in rows) == BIG + 1
    finally:
        path.unlink(missing_ok=True)
