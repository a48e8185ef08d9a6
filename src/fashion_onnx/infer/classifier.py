"""``Classifier``: predictions from arrays, PIL images or files, streamed in fixed-size batches."""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image

from fashion_onnx.constants import IMAGE_SIZE
from fashion_onnx.errors import ImageError, InvalidArgumentError, ModelError
from fashion_onnx.infer.abstain import UNKNOWN_LABEL, Abstain, energy
from fashion_onnx.infer.contract import read_model
from fashion_onnx.infer.files import FileBatch, classify_files
from fashion_onnx.infer.images import load_image, to_model_image
from fashion_onnx.infer.prepare import (
    Fit,
    Invert,
    Preparation,
    check_fit,
    check_invert,
    should_invert,
)
from fashion_onnx.infer.runner import ModelRunner

ImageLike = str | os.PathLike[str] | Image.Image


@dataclass(frozen=True)
class Predictions:
    """Results for N images, in input order.

    ``probabilities`` are the model's ``calibrated_probabilities`` where the file has them
    (the embedded models do: softmax(logits / T)), else its ``probabilities``.
    """

    probabilities: np.ndarray  # (N, 10) float32, rows sum to 1
    class_names: tuple[str, ...]  # the model's class names, index = label
    logits: np.ndarray | None = None  # (N, 10) float32, when the model has a logits output
    ood_threshold: float | None = None  # the model's default energy threshold (metadata)

    @property
    def ood_scores(self) -> np.ndarray:
        """(N,) the energy -logsumexp(logits): higher = less like FashionMNIST.

        Raises:
            ModelError: the model has no logits output.
        """
        if self.logits is None:
            raise ModelError("this model has no logits output, so no energy score")
        return energy(self.logits)

    def unknown(self, min_confidence: float | None = None, *, ood: bool = False) -> np.ndarray:
        """(N,) bool: the rows that abstain ("not one of mine").

        Args:
            min_confidence: rows whose top-1 probability is below it abstain.
            ood: rows whose ``ood_scores`` exceed the model's ``ood_threshold`` (chosen to
                keep 95% of the real test set) abstain.

        Raises:
            InvalidArgumentError: min_confidence outside [0, 1].
            ModelError: ood=True and the model has no logits or no ood_threshold.
        """
        if ood and self.ood_threshold is None:
            raise ModelError("this model records no ood_threshold; export it with fashion-export")
        rule = Abstain(min_confidence, self.ood_threshold if ood else None)
        return rule.unknown(self.probabilities, self.ood_scores if ood else None)

    def labels_or_unknown(
        self, min_confidence: float | None = None, *, ood: bool = False
    ) -> np.ndarray:
        """``labels`` with -1 where the row abstains (see ``unknown``)."""
        return np.where(self.unknown(min_confidence, ood=ood), UNKNOWN_LABEL, self.labels)

    @property
    def labels(self) -> np.ndarray:  # (N,) int64, the top-1 class index
        return np.asarray(self.probabilities.argmax(axis=1))

    @property
    def names(self) -> list[str]:  # the top-1 class name per image
        return [self.class_names[i] for i in self.labels]

    @property
    def confidences(self) -> np.ndarray:  # (N,) the top-1 probability
        return np.asarray(self.probabilities.max(axis=1))

    def top_k(self, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(indices (N, k), probabilities (N, k)), most likely first."""
        if not 1 <= k <= self.probabilities.shape[1]:
            raise InvalidArgumentError(f"k must be in 1..{self.probabilities.shape[1]}, got {k}")
        order = np.argsort(-self.probabilities, axis=1, kind="stable")[:, :k]
        return order, np.take_along_axis(self.probabilities, order, axis=1)

    def __len__(self) -> int:
        return len(self.probabilities)


class Classifier:
    """FashionMNIST classifier on ONNX Runtime. Torch-free.

    Args:
        model: "mlp" (the default, the card's model) or "cnn" for a model embedded in the
            package, or an ONNX file (path or bytes).
        device: "auto" (CUDA when really usable, else CPU), "cuda" (or fail) or "cpu".
        batch_size: images per engine call; inputs of any size are streamed through it.
            None: 512 on the CPU, 4096 on CUDA.
        threads: intra-op threads for the CPU provider; None lets onnxruntime choose.
        invert: "auto" inverts images with a light background (product photos),
            "always" or "never" force it.
        fit: for images that are not 28x28: "trim" cuts them to the garment, then fits
            and centres it as FashionMNIST was made (product photos with margins);
            "full" fits the whole frame. 28x28 images are taken as they are.
        spinning: let idle engine threads busy-wait for the next batch (fastest when
            the engine has the CPU to itself; turn off when decoder processes share it).

    Raises:
        ModelError: the model is unreadable or not [N,1,28,28] -> [N,10].
        DeviceError: device="cuda" and CUDA is not usable.
        InvalidArgumentError: a setting out of range or not one of its choices.
    """

    def __init__(
        self,
        model: str | os.PathLike[str] | bytes | None = None,
        *,
        device: str = "auto",
        batch_size: int | None = None,
        threads: int | None = None,
        invert: Invert = "auto",
        fit: Fit = "trim",
        spinning: bool = True,
    ) -> None:
        self.preparation = Preparation(check_invert(invert), check_fit(fit))
        model_bytes, source = read_model(model)
        self.runner = ModelRunner(
            model_bytes,
            source,
            device=device,
            batch_size=batch_size,
            threads=threads,
            spinning=spinning,
        )
        for message in self.runner.contract.warnings:
            warnings.warn(f"{source}: {message}", stacklevel=2)

    @property
    def provider(self) -> str:
        """The execution provider the session really runs on, e.g. CPUExecutionProvider."""
        return self.runner.provider

    @property
    def class_names(self) -> tuple[str, ...]:
        return self.runner.class_names

    @property
    def batch_size(self) -> int:
        return self.runner.batch_size

    @property
    def model_bytes(self) -> bytes:
        return self.runner.model_bytes

    @property
    def source(self) -> str:
        return self.runner.source

    def predict_pixels(self, images: np.ndarray) -> np.ndarray:
        """The engine alone, on checked images: (n, 28, 28) uint8, or floats in [0, 1], light
        garment on dark (already inverted where needed) -> probabilities (n, 10) float32."""
        return self.runner.predict_pixels(images)

    def _predictions(self, batches: list[np.ndarray]) -> Predictions:
        """Run the engine on prepared batches; keep the logits when the model has them."""
        contract = self.runner.contract
        empty = np.empty((0, len(self.class_names)), np.float32)
        if contract.logits_name is None:
            probs = [self.predict_pixels(b) for b in batches]
            return Predictions(np.concatenate(probs) if probs else empty, self.class_names)
        pairs = [self.runner.predict_with_logits(b) for b in batches]
        return Predictions(
            np.concatenate([p for p, _ in pairs]) if pairs else empty,
            self.class_names,
            np.concatenate([q for _, q in pairs]) if pairs else empty,
            contract.ood_threshold,
        )

    # -- inputs -------------------------------------------------------------------

    def _normalise_array(self, images: np.ndarray) -> np.ndarray:
        """Accept (28,28), (N,28,28) or (N,1,28,28), uint8 or float in [0,1]."""
        if not isinstance(images, np.ndarray):
            raise InvalidArgumentError(f"expected a numpy array, got {type(images).__name__}")
        if images.ndim == 4 and images.shape[1] == 1:
            images = images[:, 0]
        elif images.ndim == 2:
            images = images[None]
        if images.ndim != 3 or images.shape[1:] != (IMAGE_SIZE, IMAGE_SIZE):
            raise InvalidArgumentError(
                f"array shape {images.shape}: expected (N, 28, 28), (N, 1, 28, 28) or (28, 28)"
            )
        if images.dtype == np.uint8:
            pass
        elif images.dtype.kind == "f":
            if images.size and not np.isfinite(images).all():
                raise InvalidArgumentError("float images contain NaN or infinity")
            if images.size and (images.min() < 0 or images.max() > 1):
                raise InvalidArgumentError(
                    f"float images must lie in [0, 1] (found {images.min():g}..{images.max():g}); "
                    "divide by 255 or pass uint8"
                )
        else:
            raise InvalidArgumentError(
                f"array dtype {images.dtype}: expected uint8 or a float type"
            )
        invert = self.preparation.invert
        if invert == "never":
            return images
        flip = np.array([should_invert(img, invert) for img in images], dtype=bool)
        if flip.any():
            images = images.copy()
            top = 255 if images.dtype == np.uint8 else 1.0
            images[flip] = top - images[flip]
        return images

    def _image_to_array(self, item: ImageLike) -> np.ndarray:
        if isinstance(item, Image.Image):
            return to_model_image(item, self.preparation)
        if isinstance(item, str | os.PathLike):
            try:
                return load_image(item, self.preparation)
            except ImageError as exc:
                raise ImageError(f"{item}: {exc}") from None
        raise InvalidArgumentError(f"expected a path or a PIL image, got {type(item).__name__}")

    def predict(self, images: np.ndarray | Sequence[ImageLike] | ImageLike) -> Predictions:
        """Classify images given as an array, PIL images or file paths.

        Args:
            images: an ndarray (N,28,28), (N,1,28,28) or (28,28), uint8 or float in
                [0, 1]; or one or a list of paths / PIL images (any size and mode).

        Returns:
            Predictions in input order.

        Raises:
            ImageError: a file could not be read (its path and the reason). To classify
                many files and collect the failures instead, use ``classify_files``.
            InvalidArgumentError: an array of the wrong shape, dtype or values.
        """
        if isinstance(images, np.ndarray):
            return self._predictions([self._normalise_array(images)])
        items = [images] if isinstance(images, str | os.PathLike | Image.Image) else images
        return self._predictions(list(self._file_batches(list(items))))

    def _file_batches(self, items: list[ImageLike]) -> Iterator[np.ndarray]:
        for start in range(0, len(items), self.batch_size):
            chunk = items[start : start + self.batch_size]
            yield np.stack([self._image_to_array(item) for item in chunk])

    def classify_files(
        self,
        inputs: Iterable[str | os.PathLike[str]] | str | os.PathLike[str],
        *,
        workers: int | None = None,
    ) -> Iterator[FileBatch]:
        """Classify every image under ``inputs`` (files, directories, globs; or one of
        them as a str or PathLike), tolerating bad files; see ``files.classify_files``."""
        return classify_files(self, inputs, workers=workers)
