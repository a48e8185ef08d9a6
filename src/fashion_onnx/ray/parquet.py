"""``--format parquet`` on ``--engine ray``: the predictions as a Parquet dataset of parts
with deterministic names, so that a job killed midway is resumed, not restarted.

- The driver finds the local inputs (as for the other formats) and cuts them, in order,
  into chunks of ``PART_FILES`` files. Chunk i becomes the part
  ``part-{i:06d}-{key}.parquet``; ``key`` digests the chunk's paths, so a part's name says
  which files it holds.
- A pool of actors decodes, classifies and writes one chunk at a time: the part goes under
  a hidden temporary name first (``.part-...tmp``), then is renamed, so a part that
  exists is whole. Readers (pyarrow, Ray Data) skip hidden and ``_`` files.
- While the job runs, the destination holds ``MARKER``, the run's fingerprint (as the
  ``-o FILE`` journal's header). A run that finds it refuses to start without
  ``--resume``; ``--resume`` checks the fingerprint and writes only the parts that do
  not exist. The marker is removed once every part is written.

Ray Data's own checkpointing (``ray.data.checkpoint``, beta in Ray 2.60) was tried first:
it wrote no checkpoint before the first part file and hung on resume with 2 CPUs.

Each row: ``path`` (as given), ``label`` (-1 where the file failed), ``class``,
``confidence``, ``probabilities`` (10 float32) and ``error`` ("" when classified). Files
that discovery could not find are reported, not written, as for the other formats.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from fashion_onnx.constants import NUM_CLASSES
from fashion_onnx.infer.decode import Failure
from fashion_onnx.infer.discover import find_images
from fashion_onnx.infer.journal import JournalRefused, JournalWriteError, what_changed
from fashion_onnx.infer.prepare import Preparation
from fashion_onnx.infer.sources import key_of
from fashion_onnx.ray.data import BATCH, RayPredictor, decode_batch

if TYPE_CHECKING:
    import pyarrow
    import pyarrow.fs

PART_FILES = BATCH  # files a part: at most this many a worker redoes after a kill
MARKER = "_fashion-infer.partial"  # the fingerprint of the run writing the parts
VERSION = 1  # of the marker's format


@dataclass(frozen=True)
class Part:
    """One chunk of the inputs and the part file it becomes."""

    name: str  # part-000003-<key>.parquet
    paths: list[str]  # as given (the rows' path)
    files: list[str]  # absolute (what the workers read)


def plan(inputs: Sequence[str]) -> tuple[list[Part], list[Failure]]:
    """(the inputs' files cut into parts, in order; the problems met finding them)."""
    paths: list[str] = []
    problems: list[Failure] = []
    for path, problem in find_images(inputs):
        if problem is None:
            paths.append(path)
        else:
            problems.append(Failure(path, problem))
    parts = []
    for index, start in enumerate(range(0, len(paths), PART_FILES)):
        chunk = paths[start : start + PART_FILES]
        name = f"part-{index:06d}-{key_of(chunk)}.parquet"
        parts.append(Part(name, chunk, [os.path.abspath(p) for p in chunk]))
    return parts, problems


def schema() -> pyarrow.Schema:
    import pyarrow as pa

    return pa.schema(
        [
            ("path", pa.string()),
            ("label", pa.int64()),
            ("class", pa.string()),
            ("confidence", pa.float32()),
            ("probabilities", pa.list_(pa.float32(), NUM_CLASSES)),
            ("error", pa.string()),
        ]
    )


class Destination:
    """The directory (or URI) the parts go to, through pyarrow's filesystems."""

    def __init__(self, where: str) -> None:
        from pyarrow import fs

        self.where = where
        uri = where if "://" in where else os.path.abspath(where)
        self.fs, self.root = fs.FileSystem.from_uri(uri)

    def path(self, name: str) -> str:
        return f"{self.root.rstrip('/')}/{name}"

    def names(self) -> set[str]:
        """The files directly in the destination (none when it does not exist)."""
        from pyarrow import fs

        infos = self.fs.get_file_info(fs.FileSelector(self.root, allow_not_found=True))
        return {info.base_name for info in infos if info.type == fs.FileType.File}

    def read_marker(self) -> dict[str, Any] | None:
        try:
            with self.fs.open_input_stream(self.path(MARKER)) as stream:
                value = json.loads(stream.read())
        except FileNotFoundError:
            return None
        return value if isinstance(value, dict) else {}

    def write_marker(self, fingerprint: dict[str, object]) -> None:
        self.fs.create_dir(self.root, recursive=True)
        with self.fs.open_output_stream(self.path(MARKER)) as stream:
            stream.write(json.dumps({"version": VERSION, **fingerprint}).encode())

    def remove_marker(self) -> None:
        self.fs.delete_file(self.path(MARKER))

    def remove_temporaries(self) -> None:
        """Delete the parts a killed run was writing (under their temporary names)."""
        for name in self.names():
            if name.startswith(".part-") and name.endswith(".tmp"):
                self.fs.delete_file(self.path(name))

    def write(self, name: str, table: pyarrow.Table) -> None:
        """Write ``table`` as the part ``name``: whole, or not at all."""
        import pyarrow.parquet as pq

        temporary = self.path(f".{name}.{uuid.uuid4().hex[:8]}.tmp")  # one per writer
        pq.write_table(table, temporary, filesystem=self.fs)
        self.fs.move(temporary, self.path(name))

    def counts(self, names: Sequence[str]) -> tuple[int, int]:
        """(rows classified, rows failed) in the parts ``names``, read from their ``error``."""
        import pyarrow.parquet as pq

        classified = failed = 0
        for name in names:
            errors = pq.read_table(self.path(name), columns=["error"], filesystem=self.fs)
            bad = sum(1 for e in errors.column("error").to_pylist() if e)
            classified += errors.num_rows - bad
            failed += bad
        return classified, failed


def check_destination(where: str, fingerprint: dict[str, object], resume: bool) -> Destination:
    """The destination, checked and left as it is: a new one, or with ``resume`` the one an
    unfinished run of the same command left. A job checks it before it connects to Ray.

    Raises:
        JournalRefused: an unfinished run is there and ``resume`` is not set, or it is of
            another command; or Parquet files of a finished run are in the way.
        JournalWriteError: the destination cannot be read.
    """
    destination = Destination(where)
    try:
        marker = destination.read_marker()
        if marker is not None:
            if not resume:
                raise JournalRefused(
                    f"{where} holds the parts of an unfinished run: run the same command "
                    f"with --resume to finish it, or delete {where} to start over"
                )
            before = {k: v for k, v in marker.items() if k != "version"}
            changed = what_changed(before, fingerprint)
            if marker.get("version") != VERSION or changed is not None:
                raise JournalRefused(
                    f"--resume: {where} holds the parts of another run: "
                    f"{changed or 'another version of fashion-infer'}; run the command that "
                    f"started it, or delete {where} to start over"
                )
        elif any(name.endswith(".parquet") for name in destination.names()):
            raise JournalRefused(
                f"{where} already holds Parquet files: delete them or choose another -o"
            )
    except OSError as exc:
        raise JournalWriteError(f"{where}: {exc.strerror or exc}") from None
    return destination


def open_destination(where: str, fingerprint: dict[str, object], resume: bool) -> Destination:
    """The destination, checked (``check_destination``), cleared (when resumed) of the
    parts a killed run was writing, and its marker (re)written.

    Raises:
        JournalRefused: see ``check_destination``.
        JournalWriteError: the destination cannot be read, or the marker written.
    """
    destination = check_destination(where, fingerprint, resume)
    try:
        if resume:
            destination.remove_temporaries()
        destination.write_marker(fingerprint)
    except OSError as exc:
        raise JournalWriteError(f"{where}: {exc.strerror or exc}") from None
    return destination


class PartWriter:
    """A ``map_batches`` step for an actor pool: each row is a part to write (``part``,
    ``paths``, ``files``); it returns the part's name and its failures."""

    def __init__(
        self,
        where: str,
        preparation: Preparation,
        model: bytes | str | None = None,
        *,
        device: str = "cpu",
    ) -> None:
        self.destination = Destination(where)
        self.preparation = preparation
        self.predictor = RayPredictor(model, device=device, threads=1)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, Any]:
        import pyarrow as pa

        names, failures = [], []
        for name, paths, files in zip(batch["part"], batch["paths"], batch["files"], strict=True):
            columns = {"path": np.asarray(paths, dtype=object), "file": np.asarray(files, object)}
            rows = self.predictor(decode_batch(columns, "file", self.preparation))
            table = pa.table(
                {
                    "path": pa.array(rows["path"].tolist(), pa.string()),
                    "label": pa.array(rows["label"], pa.int64()),
                    "class": pa.array(rows["class"].tolist(), pa.string()),
                    "confidence": pa.array(rows["confidence"], pa.float32()),
                    "probabilities": pa.FixedSizeListArray.from_arrays(
                        pa.array(rows["probabilities"].reshape(-1), pa.float32()), NUM_CLASSES
                    ),
                    "error": pa.array(rows["error"].tolist(), pa.string()),
                },
                schema=schema(),
            )
            self.destination.write(str(name), table)
            bad = rows["error"] != ""
            names.append(str(name))
            failures.append(json.dumps([rows["path"][bad].tolist(), rows["error"][bad].tolist()]))
        return {"part": np.array(names, object), "failed": np.array(failures, object)}


def write_parts_on_ray(
    inputs: Sequence[str],
    where: str,
    *,
    model: bytes,
    device: str,
    preparation: Preparation,
    fingerprint: dict[str, object],
    resume: bool,
    advance: Callable[[int], None] = lambda _: None,
) -> tuple[int, int, list[Failure]]:
    """Write the predictions of ``inputs`` (local paths) as parts under ``where`` (a
    directory or URI), skipping the parts a resumed run finds written.

    Returns:
        (images classified, images failed, the failures met now: discovery problems and
        the files of the parts written now that could not be classified). The counts
        cover the parts written earlier too.

    Raises:
        JournalRefused, JournalWriteError: see ``open_destination``.
    """
    import ray

    from fashion_onnx.ray.data import actor_device

    destination = open_destination(where, fingerprint, resume)
    parts, problems = plan(inputs)
    existing = destination.names()
    done = [p.name for p in parts if p.name in existing]
    todo = [p for p in parts if p.name not in existing]
    classified, failed = destination.counts(done)
    advance(classified + failed)
    failures = list(problems)
    if todo:
        device = actor_device(device)
        resources = ray.cluster_resources()  # type: ignore[no-untyped-call]
        most = int(resources.get("GPU", 0)) if device == "cuda" else int(resources.get("CPU", 1))
        sizes = {p.name: len(p.paths) for p in todo}
        ds = ray.data.from_items(
            [{"part": p.name, "paths": p.paths, "files": p.files} for p in todo]
        )
        written = ds.map_batches(
            PartWriter,
            fn_constructor_kwargs={
                "where": where,
                "preparation": preparation,
                "model": model,
                "device": device,
            },
            compute=ray.data.ActorPoolStrategy(min_size=1, max_size=max(1, min(most, len(todo)))),
            batch_size=1,
            batch_format="numpy",
            num_cpus=None if device == "cuda" else 1,
            num_gpus=1 if device == "cuda" else None,
        )
        for row in written.iter_rows():
            paths, errors = json.loads(row["failed"])
            failures += [Failure(p, e) for p, e in zip(paths, errors, strict=True)]
            classified += sizes[row["part"]] - len(paths)
            failed += len(paths)
            advance(sizes[row["part"]])
    try:
        destination.remove_marker()
    except OSError as exc:
        raise JournalWriteError(f"{where}: {exc.strerror or exc}") from None
    return classified, failed + len(problems), failures
