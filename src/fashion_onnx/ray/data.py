"""Scale out: classify files on a Ray cluster through Ray Data.

The same decode function (``decode.decode_chunk``) and the same model contract
(``Classifier``) as the local engine; only the scheduling differs. Decoding runs as Ray
tasks; inference runs in a pool of actors, each holding one onnxruntime session made
inside the actor (never pickled), with as many engine threads as the actor has CPUs.

For users who already run Ray pipelines::

    import ray
    from fashion_onnx.ray.data import add_predictions

    ds = ray.data.read_binary_files("s3://bucket/shots/", include_paths=True)
    ds = add_predictions(ds, column="bytes")  # + label, class, confidence, probabilities, error

Nothing here is imported unless Ray is asked for.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from fashion_onnx.constants import IMAGE_SIZE, NUM_CLASSES
from fashion_onnx.errors import InvalidArgumentError
from fashion_onnx.infer.contract import read_model
from fashion_onnx.infer.decode import Failure, decode_chunk
from fashion_onnx.infer.discover import find_images
from fashion_onnx.infer.files import FileBatch
from fashion_onnx.infer.images import IMAGE_SUFFIXES
from fashion_onnx.infer.prepare import Fit, Invert, Preparation
from fashion_onnx.infer.rows import row_values

# The cluster rules live in ray_cluster (Serve uses them too); re-exported for the CLI.
from fashion_onnx.ray.cluster import ClusterInfo as ClusterInfo
from fashion_onnx.ray.cluster import RayClusterError as RayClusterError
from fashion_onnx.ray.cluster import _quiet_ray_data
from fashion_onnx.ray.cluster import connect as connect
from fashion_onnx.ray.cluster import disconnect as disconnect
from fashion_onnx.ray.cluster import is_uri as is_uri

if TYPE_CHECKING:
    import ray.data

BATCH = 1024  # rows per Ray Data batch: large enough to amortise the engine call
Skip = Callable[[list[str]], int]  # every input's name, in order -> how many are done


# -- the Ray Data steps (run on the workers) -----------------------------------------


def decode_batch(
    batch: dict[str, np.ndarray], column: str, preparation: Preparation
) -> dict[str, Any]:
    """A ``map_batches`` step: decode and prepare ``column`` (file paths, or file contents
    as bytes).

    Adds ``image`` (uint8 (n, 28, 28), zeros where decoding failed) and ``error`` (the
    one-line reason, "" when the image decoded). A bad file never fails the dataset.
    """
    sources = [s if isinstance(s, bytes) else str(s) for s in batch[column]]
    decoded = decode_chunk(sources, preparation)
    ok = np.array([e is None for e in decoded.errors], dtype=bool)
    images = np.zeros((len(sources), IMAGE_SIZE, IMAGE_SIZE), dtype=np.uint8)
    images[ok] = decoded.images
    errors = np.array([e or "" for e in decoded.errors], dtype=object)
    return {**batch, "image": images, "error": errors}


class RayPredictor:
    """A ``map_batches`` step for an actor pool: adds the prediction columns.

    Reads ``image`` and ``error`` (from ``decode_batch``); replaces ``image`` with ``label``
    (int64, -1 where the file failed), ``class`` (str), ``confidence`` (float32) and
    ``probabilities`` (float32 (n, 10)). The session is created here, in the actor.

    Args:
        model: ONNX bytes (read once on the driver) or a path every node can read; None
            uses the embedded model.
        device: "cpu" or "cuda" (the actor should then hold a GPU).
        threads: engine threads; match the CPUs the actor was given.
        node_column: also record, in this column, the Ray node that classified each row.
    """

    def __init__(
        self,
        model: bytes | str | None = None,
        *,
        device: str = "cpu",
        threads: int = 1,
        node_column: str | None = None,
    ) -> None:
        from fashion_onnx.infer.classifier import Classifier

        self.classifier = Classifier(model, device=device, threads=threads)
        self.node_column = node_column

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, Any]:
        out = {k: v for k, v in batch.items() if k != "image"}
        ok = batch["error"] == ""
        probs = np.zeros((len(ok), NUM_CLASSES), dtype=np.float32)
        probs[ok] = self.classifier.predict_pixels(batch["image"][ok])
        rows = row_values(probs[ok], self.classifier.class_names)
        labels = np.full(len(ok), -1, np.int64)  # a failed file: label -1, class ""
        labels[ok] = rows.labels
        confidence = np.zeros(len(ok), np.float32)
        confidence[ok] = rows.confidences
        classes = np.full(len(ok), "", dtype=object)
        classes[ok] = rows.classes()
        out.update(label=labels, confidence=confidence, probabilities=probs)
        out["class"] = classes
        if self.node_column is not None:
            import ray

            node = ray.get_runtime_context().get_node_id()
            out[self.node_column] = np.array([node] * len(ok), dtype=object)
        return out


def actor_device(device: str) -> str:
    """The inference actors' device: "auto" is "cuda" when the cluster has a GPU.

    Raises:
        RayClusterError: "cuda" on a cluster without a GPU.
    """
    import ray

    if device not in ("auto", "cpu", "cuda"):
        raise InvalidArgumentError(f"device must be one of auto, cuda, cpu, got {device!r}")
    gpus = int(ray.cluster_resources().get("GPU", 0))  # type: ignore[no-untyped-call]
    if device == "cuda" and not gpus:
        raise RayClusterError("device cuda was asked for, but the Ray cluster has no GPU")
    return "cuda" if device == "cuda" or (device == "auto" and gpus) else "cpu"


def add_predictions(
    ds: ray.data.Dataset,
    *,
    column: str = "path",
    model: bytes | str | None = None,
    device: str = "auto",
    invert: Invert = "auto",
    fit: Fit = "trim",
    actors: int | None = None,
    min_actors: int = 1,
    batch_size: int = BATCH,
    node_column: str | None = None,
    actor: type[RayPredictor] | None = None,
) -> ray.data.Dataset:
    """Add prediction columns to a dataset with a ``column`` of image paths or bytes.

    Args:
        ds: any ``ray.data.Dataset``; its other columns are kept.
        column: the paths (every node must be able to read them) or the files' bytes.
        model: ONNX bytes or a path; None uses the embedded model (read here, shipped once).
        device: "cpu", "cuda" (one GPU per actor) or "auto" (CUDA when the cluster has GPUs).
        invert: as for ``Classifier``: "auto" inverts light-background images.
        fit: as for ``Classifier``: "trim" cuts photos to the garment, "full" does not.
        actors: the most inference actors; None: one per CPU (or GPU) of the cluster.
        min_actors: the fewest. The pool grows from here as work queues up; keep it below
            the cluster's CPUs when the dataset is read by tasks, which need a CPU too.
        batch_size: rows per batch for decoding and inference.
        node_column: see ``RayPredictor``.
        actor: a ``RayPredictor`` subclass to run instead (to add columns of your own).

    Returns:
        The dataset with ``label``, ``class``, ``confidence``, ``probabilities`` and
        ``error`` ("" when the image was classified) added, in the input order when the
        context preserves order.
    """
    import ray

    device = actor_device(device)
    resources = ray.cluster_resources()  # type: ignore[no-untyped-call]
    gpus, cpus = int(resources.get("GPU", 0)), max(1, int(resources.get("CPU", 1)))
    model_bytes, _ = read_model(model)
    most = actors or (gpus if device == "cuda" else cpus)
    ds = ds.map_batches(
        decode_batch,  # type: ignore[arg-type]  # extra keyword arguments come from fn_kwargs
        fn_kwargs={"column": column, "preparation": Preparation(invert, fit)},
        batch_format="numpy",
        batch_size=batch_size,
    )
    return ds.map_batches(
        actor or RayPredictor,
        fn_constructor_kwargs={
            "model": model_bytes,
            "device": device,
            "threads": 1,
            "node_column": node_column,
        },
        compute=ray.data.ActorPoolStrategy(min_size=min_actors, max_size=max(most, min_actors)),
        batch_format="numpy",
        batch_size=batch_size,
        num_cpus=None if device == "cuda" else 1,
        num_gpus=1 if device == "cuda" else None,
    )


# -- the CLI's engine --------------------------------------------------------------------


def dataset_of(
    inputs: Sequence[str], problems: list[Failure], skip: Skip | None = None
) -> tuple[ray.data.Dataset, str]:
    """(a dataset of the inputs, its source column). Local files, directories and globs are
    found here (every node must read the same paths): the workers read ``file``, the
    absolute path, and ``path`` keeps the form given, as the local engine writes it. URIs
    go through Ray Data's reader. Discovery problems are appended to ``problems``.
    ``skip``: see ``classify_on_ray``."""
    import ray.data

    uris = [p for p in inputs if is_uri(p)]
    if uris and len(uris) != len(inputs):
        raise InvalidArgumentError("give either local paths or URIs (s3://...), not both")
    if uris and skip is not None:
        raise InvalidArgumentError("--resume takes local paths on --engine ray, not URIs")
    if uris:
        schemes = {u.split("://", 1)[0] for u in uris}
        if len(schemes) > 1:
            raise InvalidArgumentError(f"give URIs of one scheme, not {sorted(schemes)}")
        suffixes = sorted({s.lstrip(".") for s in IMAGE_SUFFIXES} | {"PNG", "JPG", "JPEG"})
        try:
            ds = ray.data.read_binary_files(uris, include_paths=True, file_extensions=suffixes)
        except Exception as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise RayClusterError(f"cannot list {', '.join(uris)}: {first}") from None
        # Ray Data names objects without their scheme; give it back, so paths stay URIs.
        prefix = f"{schemes.pop()}://"
        ds = ds.map_batches(
            _with_scheme,  # type: ignore[arg-type]  # prefix comes from fn_kwargs
            fn_kwargs={"prefix": prefix},
            batch_format="numpy",
        )
        return ds, "bytes"
    rows = []
    for path, problem in find_images(inputs):
        if problem is None:
            rows.append({"path": path, "file": os.path.abspath(path)})
        else:
            problems.append(Failure(path, problem))
    if skip is not None:  # the problems come first, then the files
        finished = skip([f.path for f in problems] + [row["path"] for row in rows])
        rows = rows[max(0, finished - len(problems)) :]
        del problems[:finished]
    return ray.data.from_items(rows), "file"


def _with_scheme(batch: dict[str, np.ndarray], prefix: str) -> dict[str, np.ndarray]:
    """ "bucket/key.png" -> "s3://bucket/key.png"; "/tmp/a.png" -> "file:///tmp/a.png"."""
    paths = [str(p) if is_uri(str(p)) else prefix + str(p) for p in batch["path"]]
    return {**batch, "path": np.array(paths, dtype=object)}


def _to_file_batch(batch: dict[str, np.ndarray]) -> FileBatch:
    ok = batch["error"] == ""
    paths = [str(p) for p in batch["path"]]
    return FileBatch(
        paths=[p for p, good in zip(paths, ok, strict=True) if good],
        probabilities=np.asarray(batch["probabilities"], dtype=np.float32)[ok],
        failures=[
            Failure(p, str(e))
            for p, e, good in zip(paths, batch["error"], ok, strict=True)
            if not good
        ],
    )


def _predictions(
    inputs: Sequence[str],
    model: bytes | str | None,
    device: str,
    preparation: Preparation,
    batch_size: int,
    skip: Skip | None = None,
) -> tuple[ray.data.Dataset, list[Failure]]:
    """(the inputs' dataset with the prediction columns, without the column read (file
    contents, or absolute paths), the problems met finding the inputs)."""
    _quiet_ray_data()
    problems: list[Failure] = []
    ds, column = dataset_of(inputs, problems, skip)
    ds = add_predictions(
        ds,
        column=column,
        model=model,
        device=device,
        invert=preparation.invert,
        fit=preparation.fit,
        batch_size=batch_size,
    )
    return ds.drop_columns([column]), problems


def classify_on_ray(
    inputs: Sequence[str],
    *,
    model: bytes | str | None,
    device: str,
    preparation: Preparation,
    batch_size: int = BATCH,
    skip: Skip | None = None,
) -> Iterator[FileBatch]:
    """Classify ``inputs`` on the connected cluster; stream ``FileBatch``es to this
    process in input order. Every input comes back once: classified or failed.

    ``skip`` (a resumed run; local paths only) is given every input's name in order, the
    problems met finding them first, and says how many of them are done already: those
    are left out.
    """
    ds, problems = _predictions(inputs, model, device, preparation, batch_size, skip)
    if problems:
        yield FileBatch([], np.empty((0, NUM_CLASSES), np.float32), problems)
    for batch in ds.iter_batches(batch_size=None, batch_format="numpy"):
        yield _to_file_batch(batch)


def write_parquet_on_ray(
    inputs: Sequence[str],
    destination: str,
    *,
    model: bytes | str | None,
    device: str,
    preparation: Preparation,
    batch_size: int = BATCH,
) -> tuple[int, list[Failure]]:
    """Write the predictions as a Parquet dataset from the workers (one file per block) to
    a directory or URI; failed files are rows too, with their ``error``. Return (images
    classified, the inputs that failed). In one go: the command line takes this route for
    URI inputs only; local ones go as resumable parts (``ray_parquet``)."""
    import ray.data

    ds, problems = _predictions(inputs, model, device, preparation, batch_size)
    ds.write_parquet(destination)
    written = ray.data.read_parquet(destination, columns=["path", "error"])
    failed = written.filter(lambda row: row["error"] != "")
    failures = [Failure(str(r["path"]), str(r["error"])) for r in failed.iter_rows()]
    return written.count() - len(failures), problems + failures
