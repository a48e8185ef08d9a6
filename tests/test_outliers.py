"""Outlier exposure: synthetic non-garments made from a seed (no dataset, no bundled photo,
so fashion-eval's OOD sets stay unseen), and the training images held out for calibration."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from fashion_onnx.constants import HELD_OUT
from fashion_onnx.fashion_mnist import held_out
from fashion_onnx.train import outliers


def test_the_synthetic_outliers_are_seeded_and_varied() -> None:
    a, b = outliers.synthetic(300, seed=5), outliers.synthetic(300, seed=5)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, outliers.synthetic(300, seed=6))
    assert a.dtype == np.uint8 and a.shape == (300, 28, 28)
    assert (a.reshape(300, -1).std(axis=1) > 1).mean() > 0.95  # content, not blank frames
    for family in outliers.FAMILIES:
        made = np.stack([getattr(outliers, family)(np.random.default_rng(i)) for i in range(20)])
        assert made.shape == (20, 28, 28) and made.dtype == np.uint8, family
        assert len({m.tobytes() for m in made}) == 20, family  # each draw differs


def test_the_pool_inverts_training_images_it_is_given() -> None:
    train = np.zeros((50, 28, 28), np.uint8)  # all black: inverted, all white
    made = outliers.pool(train, 40, seed=0, inverted_share=0.25)
    assert made.shape == (40, 28, 28)
    assert sum(bool((m == 255).all()) for m in made) == 10


def test_the_outliers_come_from_no_dataset_of_the_ood_sets() -> None:
    """Made without scikit-learn's digits or scikit-image's photos: the evaluation sets
    are never seen in training."""
    code = (
        "import sys; from fashion_onnx.train import outliers; outliers.synthetic(200, 0); "
        "print(sorted(m for m in ('sklearn', 'skimage', 'torchvision') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_the_held_out_slice_is_fixed_and_kept_out_of_training() -> None:
    torch = pytest.importorskip("torch", reason="needs the [train] extra")
    from fashion_onnx.train.data import FashionData
    from fashion_onnx.train.loop import training_rows

    picked = held_out()
    assert len(picked) == len(set(picked.tolist())) == HELD_OUT
    np.testing.assert_array_equal(picked, held_out())  # the same on every call and machine
    n = 60_000
    data = FashionData(
        train_images=torch.zeros((n, 28, 28), dtype=torch.uint8),
        train_labels=torch.arange(n),  # each image's own index, to see which are kept
        test_images=torch.zeros((10, 28, 28), dtype=torch.uint8),
        test_labels=torch.zeros(10, dtype=torch.int64),
        source="test",
    )
    _, kept = training_rows(data, holdout=True)
    assert len(kept) == n - HELD_OUT
    assert not set(kept.tolist()) & set(picked.tolist())
    _, everything = training_rows(data, holdout=False)
    assert len(everything) == n


def test_the_exposure_loss_is_lowest_on_a_uniform_answer() -> None:
    torch = pytest.importorskip("torch", reason="needs the [train] extra")
    from fashion_onnx.train.loop import uniform_cross_entropy

    flat = uniform_cross_entropy(torch.zeros(4, 10))
    assert flat.item() == pytest.approx(np.log(10))
    sure = torch.zeros(4, 10)
    sure[:, 3] = 8.0
    assert uniform_cross_entropy(sure).item() > flat.item() + 1
