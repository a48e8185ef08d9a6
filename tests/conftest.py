"""Shared fixtures. Tests are offline; real FashionMNIST comes from the data dir or
Debian's ``dataset-fashion-mnist`` package (``make test`` and ``.ci/run`` install it)."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch", reason="the [train] extra is not installed")


@pytest.fixture(scope="session")
def fashion_data():
    """Both real splits, in memory, loaded once per test session (no download)."""
    from fashion_onnx.train.data import load_fashion_mnist

    return load_fashion_mnist(download=False)
