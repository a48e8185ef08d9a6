import pytest

pytest.importorskip("torch", reason="needs the [train] extra")

from pathlib import Path

import torch

from fashion_onnx.errors import DataNotFoundError
from fashion_onnx.fashion_mnist import DEBIAN_DIR
from fashion_onnx.train.data import ensure_raw_files, load_fashion_mnist, to_input


def test_debian_files_are_unpacked_into_torchvision_layout(tmp_path: Path) -> None:
    if not DEBIAN_DIR.is_dir():
        pytest.fail(f"{DEBIAN_DIR} missing: apt-get install dataset-fashion-mnist")
    data = load_fashion_mnist(tmp_path, download=False)
    assert data.source == "debian"
    assert (tmp_path / "FashionMNIST" / "raw" / "t10k-images-idx3-ubyte").is_file()
    assert data.train_images.shape == (60000, 28, 28)
    assert data.test_images.shape == (10000, 28, 28)
    assert data.train_images.dtype == torch.uint8
    assert torch.bincount(data.test_labels).tolist() == [1000] * 10
    # A second call finds the unpacked files and does not touch Debian's copy.
    _, source = ensure_raw_files(tmp_path, debian_dir=tmp_path / "nowhere", download=False)
    assert source == "data-dir"


def test_missing_data_names_all_three_ways(tmp_path: Path, monkeypatch) -> None:
    from torchvision.datasets import FashionMNIST

    monkeypatch.setattr(FashionMNIST, "mirrors", ["http://127.0.0.1:9/"])  # offline, fast
    with pytest.raises(DataNotFoundError) as info:
        ensure_raw_files(tmp_path / "data", debian_dir=tmp_path / "debian", download=True)
    message = str(info.value)
    assert "apt-get install dataset-fashion-mnist" in message
    assert "--data-dir" in message
    assert "internet connection" in message


def test_a_corrupt_debian_file_is_refused(tmp_path: Path) -> None:
    import gzip

    debian = tmp_path / "debian"
    debian.mkdir()
    for name in ("train-images-idx3", "train-labels-idx1", "t10k-images-idx3", "t10k-labels-idx1"):
        (debian / f"{name}-ubyte.gz").write_bytes(gzip.compress(b"\0\0\0\0not an idx file"))
    with pytest.raises(DataNotFoundError, match="not a FashionMNIST IDX file"):
        ensure_raw_files(tmp_path / "data", debian_dir=debian, download=False)
    assert not list((tmp_path / "data").rglob("*-ubyte")), "no half-unpacked file is left"


def test_to_input_matches_torchvision_totensor(fashion_data) -> None:
    from torchvision.transforms.functional import to_tensor

    image = fashion_data.test_images[0]
    expected = to_tensor(image.numpy())  # (1, 28, 28) float in [0, 1]
    assert torch.equal(to_input(image[None])[0], expected)


def test_without_download_the_error_names_no_internet_and_leaves_no_folder(
    tmp_path: Path,
) -> None:
    with pytest.raises(DataNotFoundError) as info:
        ensure_raw_files(tmp_path / "data", debian_dir=tmp_path / "debian", download=False)
    message = str(info.value)
    assert "--no-download" in message
    assert "internet" not in message and "download failed" not in message
    assert list(tmp_path.iterdir()) == [], "no empty data dir or FashionMNIST/raw is left"


def test_a_failed_download_says_why_and_leaves_no_empty_raw(tmp_path: Path, monkeypatch) -> None:
    """Offline: the mirror is a closed port on this machine, so the download fails fast."""
    from torchvision.datasets import FashionMNIST

    monkeypatch.setattr(FashionMNIST, "mirrors", ["http://127.0.0.1:9/"])
    data = tmp_path / "data"
    data.mkdir()  # the user's own folder: kept, only what was created is removed
    with pytest.raises(DataNotFoundError) as info:
        ensure_raw_files(data, debian_dir=tmp_path / "debian", download=True)
    first = str(info.value).splitlines()[0]
    assert "torchvision's download failed: " in first
    reason = first.split("torchvision's download failed: ", 1)[1]
    assert reason.startswith("Error downloading train-images-idx3-ubyte.gz: "), reason
    assert "Connection refused" in reason, reason  # the cause, not only that it failed
    assert list(data.iterdir()) == [], "no empty FashionMNIST/raw is left behind"
