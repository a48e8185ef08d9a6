"""The job behind ``fashion-infer``: inputs -> chunks -> workers -> rows -> a destination,
with resume and labels; on this machine's processes or on a Ray cluster.

    from fashion_onnx.infer import JobOptions, write_predictions

    result = write_predictions(["photos/"], "predictions.csv", JobOptions(top_k=3))
    result.counts.classified, result.counts.failed

``write_predictions`` is the one implementation of what ``-o FILE`` (or stdout) does: the
command line parses its options into ``JobOptions``, calls it and prints the summary;
Python callers get the same files, rows and resume. It never prints: failures and
progress go to the callbacks given, warnings to ``warnings``.
"""

from __future__ import annotations

import contextlib
import glob
import os
import signal
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TextIO

from fashion_onnx.errors import FashionOnnxError, InvalidArgumentError

if TYPE_CHECKING:
    from fashion_onnx.infer.abstain import Abstain
    from fashion_onnx.infer.classifier import Classifier
    from fashion_onnx.infer.decode import Failure
    from fashion_onnx.infer.destination import Destination
    from fashion_onnx.infer.files import FileBatch
    from fashion_onnx.infer.labels import Truth
    from fashion_onnx.infer.output import RowFormat, RowWriter
    from fashion_onnx.infer.work import Counts, Done


@dataclass(frozen=True)
class Trust:
    """How far to trust a row: ``--min-confidence``, ``--ood-score``, ``--abstain``."""

    min_confidence: float | None = None
    ood_score: bool = False
    abstain: bool = False  # at the model's own threshold (metadata ood_threshold)

    def rule(self, threshold: float | None, model: str) -> Abstain | None:
        """The rows' Abstain, None when no option asks for one.

        Raises:
            InvalidArgumentError: ``abstain`` with a model that records no threshold.
        """
        from fashion_onnx.infer.abstain import Abstain

        if self.abstain and threshold is None:
            raise InvalidArgumentError(
                f"--abstain: {model} records no ood_threshold; export it with fashion-export"
            )
        if self.min_confidence is None and not self.ood_score and not self.abstain:
            return None
        return Abstain(self.min_confidence, threshold if self.abstain else None, self.ood_score)


@dataclass(frozen=True)
class JobOptions:
    """Everything but the inputs and the destination; the defaults are fashion-infer's."""

    model: str = "mlp"  # mlp, cnn (embedded) or an ONNX file
    device: str = "auto"
    batch_size: int | None = None
    threads: int | None = None  # engine threads where the model runs in this process
    workers: int | None = None  # processes (local) or CPUs for a local Ray
    invert: str = "auto"
    fit: str = "trim"
    fmt: str = "table"  # table, csv, json, jsonl; parquet (engine "ray", output a dir/URI)
    top_k: int = 1
    labels: str | os.PathLike[str] | None = None  # --labels
    trust: Trust = field(default_factory=Trust)
    resume: bool = False
    engine: str = "local"  # where the job runs: local (processes here) or ray
    ray_address: str | None = None


class JobInterrupted(KeyboardInterrupt):
    """SIGINT or SIGTERM (``signal``) stopped a run whose rows go to a stream (no journal
    to resume from) at a chunk boundary: the rows of ``counts`` are written, and nothing
    after them. ``partly``: a second Ctrl-C cut a chunk's rows short, so the rows of
    ``counts`` were written, and part of the next chunk's."""

    def __init__(self, counts: Counts, *, signal: int = 2, partly: bool = False) -> None:
        super().__init__()
        self.counts, self.signal, self.partly = counts, signal, partly


@dataclass
class JobResult:
    counts: Counts
    where: str  # the provider, or the Ray cluster and its actors' device
    seconds: float
    interrupted: int | None = None  # the signal that stopped the run, which can be resumed
    saved: int = 0  # images saved for the resume, when interrupted
    resume_folder: str | None = None  # where they are saved


def write_predictions(
    inputs: Sequence[str],
    output: str | None = None,
    options: JobOptions | None = None,
    *,
    stream: TextIO | None = None,
    on_failures: Callable[[list[Failure]], None] = lambda failures: None,
    on_progress: Callable[[int], None] = lambda n: None,
) -> JobResult:
    """Classify every image under ``inputs`` and write its rows to ``output`` (a file,
    written atomically through the resume journal; for parquet a directory or URI) or to
    ``stream`` (default stdout).

    Args:
        inputs: files, directories (recursive), globs, array files; with engine "ray"
            also URIs (``s3://...``).
        output: where the rows go; None: ``stream``.
        options: see ``JobOptions``.
        on_failures: called with each chunk's failures (unreadable inputs), as they come.
        on_progress: called with the number of inputs each finished chunk covered.

    Returns:
        What the run came to; ``interrupted`` when SIGINT or SIGTERM stopped a run with an
        ``output`` (the same call with ``resume`` finishes it).

    Raises:
        InvalidArgumentError: inputs that cannot be classified (none found, arrays on
            Ray, the output among the inputs), a journal in the way or of another run.
        ModelError, DeviceError, RayClusterError, ArrayInputError, JournalWriteError:
            as their names say.
    """
    from fashion_onnx.infer.arrays import check_label_count
    from fashion_onnx.infer.classifier import Classifier
    from fashion_onnx.infer.files import default_workers
    from fashion_onnx.infer.labels import labels_inside, read_labels
    from fashion_onnx.infer.prepare import check_fit, check_invert
    from fashion_onnx.infer.sources import array_inputs, check_arrays

    o = options or JobOptions()
    started = time.perf_counter()
    inputs = list(inputs)
    arrays = array_inputs(inputs)
    if arrays and o.engine == "ray":
        raise InvalidArgumentError(
            f"{arrays[0]}: array files are classified by the local engine (--engine local)"
        )
    array_images = check_arrays(arrays)
    if not arrays and not _any_image(inputs, on_failures):
        raise InvalidArgumentError("no image files found in the given paths")
    if output is not None and o.fmt != "parquet" and _is_an_input(output, inputs):
        raise InvalidArgumentError(f"--output {output} is one of the inputs; choose another path")
    known = read_labels(o.labels) if o.labels is not None else labels_inside(arrays)
    if known is not None and known.indices is not None and arrays:
        where = f"--labels {known.path}" if o.labels is not None else str(known.path)
        check_label_count(len(known.indices), array_images, where)
    on_ray = o.engine == "ray"
    # With worker processes, this process forks them: keep its own runner single-threaded
    # (no threads to fork) and not spinning (the workers need the cores). On Ray it only
    # checks the model and names the classes.
    forks = on_ray or (o.workers or default_workers()) > 1
    classifier = Classifier(
        o.model,
        device="cpu" if on_ray else o.device,
        batch_size=o.batch_size,
        threads=o.threads or (1 if forks else None),
        invert=check_invert(o.invert),
        fit=check_fit(o.fit),
        spinning=not forks,
    )
    truth = known.truth(classifier.class_names) if known is not None else None
    run = _Run(inputs, output, o, classifier, truth, stream, on_failures, on_progress)
    result = run.on_ray() if on_ray else run.here()
    if known is not None and o.fmt != "parquet" and result.interrupted is None:
        known.warn_if_unmatched(result.counts)
    result.seconds = time.perf_counter() - started
    return result


@dataclass
class _Run:
    """One call of ``write_predictions``, once its inputs and model are checked."""

    inputs: list[str]
    output: str | None
    o: JobOptions
    classifier: Classifier
    truth: Truth | None
    stream: TextIO | None
    on_failures: Callable[[list[Failure]], None]
    on_progress: Callable[[int], None]

    def fingerprint(self, with_labels: bool = True) -> dict[str, object]:
        """What --resume must find unchanged: the inputs, the model, the options that
        change the rows."""
        from fashion_onnx.infer.journal import fingerprint

        o, trust = self.o, self.o.trust
        options = {"--format": o.fmt, "--top-k": o.top_k, "--invert": o.invert, "--fit": o.fit}
        options |= {"--device": o.device, "--engine": o.engine}
        options |= {"--min-confidence": trust.min_confidence, "--ood-score": trust.ood_score}
        options |= {"--abstain": trust.abstain}
        labels = str(o.labels) if with_labels and o.labels is not None else None
        return fingerprint(self.inputs, self.classifier.model_bytes, options, labels)

    def uris(self) -> bool:
        from fashion_onnx.ray.cluster import is_uri

        return any(is_uri(i) for i in self.inputs)

    def writer(self, destination: Destination) -> RowWriter:
        from fashion_onnx.infer.output import RowWriter

        runner = self.classifier.runner
        abstain = self.o.trust.rule(runner.contract.ood_threshold, self.o.model)
        try:  # the header is written now
            return RowWriter(
                destination.stream,
                self.o.fmt,
                self.classifier.class_names,
                self.o.top_k,
                labelled=self.truth is not None,
                abstain=abstain,
                resumed_rows=destination.rows_before,
            )
        except (BrokenPipeError, FashionOnnxError):
            raise
        except OSError as exc:  # a full device
            raise destination.failed(exc) from None

    def here(self) -> JobResult:
        """On this machine: chunks to worker processes (``files.run_job``)."""
        from fashion_onnx.infer.destination import open_destination
        from fashion_onnx.infer.files import run_job
        from fashion_onnx.infer.sources import chunk_names, chunks
        from fashion_onnx.infer.work import Job

        destination = open_destination(
            self.output,
            self.fingerprint,
            resume=self.o.resume,
            uris=False,
            guard_stdout=False,
            stream=self.stream,
        )
        with contextlib.closing(destination):
            writer = self.writer(destination)
            job = Job(
                self.classifier.preparation, writer.rows, self.truth, keyed=destination.resumable
            )
            tasks = destination.track(chunks(self.inputs), chunk_names)
            done = run_job(job, tasks, self.classifier.runner, self.o.workers)
            return self.write(done, writer, destination, self.classifier.provider)

    def on_ray(self) -> JobResult:
        """On a Ray cluster: rows rendered here from its batches, or Parquet written there."""
        from fashion_onnx.infer.destination import check_destination, open_destination
        from fashion_onnx.ray import cluster, data

        uris = self.uris()
        if self.o.fmt == "parquet":
            from fashion_onnx.ray import parquet

            if uris and self.o.resume:
                raise InvalidArgumentError("--resume takes local paths on --engine ray, not URIs")
            if not uris:
                assert self.output is not None, "parquet needs an output"
                parquet.check_destination(self.output, self.fingerprint(False), self.o.resume)
        else:
            check_destination(self.output, self.fingerprint, resume=self.o.resume, uris=uris)
        connected = cluster.connect(self.o.ray_address, num_cpus=self.o.workers)
        try:
            where = f"{connected.describe()}, {data.actor_device(self.o.device).upper()} actors"
            if self.o.fmt == "parquet":
                return JobResult(self.parquet(uris), where, 0.0)
            destination = open_destination(
                self.output,
                self.fingerprint,
                resume=self.o.resume,
                uris=uris,
                guard_stdout=True,
                stream=self.stream,
            )
            with contextlib.closing(destination):
                writer = self.writer(destination)
                batches = data.classify_on_ray(
                    self.inputs,
                    model=self.classifier.model_bytes,
                    device=self.o.device,
                    preparation=self.classifier.preparation,
                    skip=destination.skip if destination.resumable else None,
                )
                done = _rendered(batches, writer.rows, self.truth, destination.resumable)
                return self.write(done, writer, destination, where)
        finally:
            cluster.disconnect(connected)

    def parquet(self, uris: bool) -> Counts:
        """--format parquet: local inputs as resumable parts (``ray.parquet``); URIs
        through Ray Data's reader and writer, in one go."""
        from fashion_onnx.infer.work import Counts
        from fashion_onnx.ray import data, parquet

        assert self.output is not None
        model, preparation = self.classifier.model_bytes, self.classifier.preparation
        if uris:
            classified, failures = data.write_parquet_on_ray(
                self.inputs,
                self.output,
                model=model,
                device=self.o.device,
                preparation=preparation,
            )
            self.on_failures(failures)
            return Counts(classified=classified, failed=len(failures))
        classified, failed, failures = parquet.write_parts_on_ray(
            self.inputs,
            self.output,
            model=model,
            device=self.o.device,
            preparation=preparation,
            fingerprint=self.fingerprint(False),
            resume=self.o.resume,
            advance=self.on_progress,
        )
        self.on_failures(failures)
        return Counts(classified=classified, failed=failed)

    def write(
        self, done: Iterator[Done], writer: RowWriter, destination: Destination, where: str
    ) -> JobResult:
        """Write each finished chunk's rows, as they come, and commit it to the
        destination; on SIGINT or SIGTERM stop at a chunk boundary: a journal is saved
        for --resume, a stream is ended (JobInterrupted says how many inputs' rows it
        holds). Nothing here is per image."""
        from fashion_onnx.infer.stop import Stop
        from fashion_onnx.infer.work import Counts

        counts = Counts()
        counts.add(destination.saved)  # what earlier runs finished
        self.on_progress(counts.classified + counts.failed)
        with Stop() as stop:
            try:
                for chunk in done:
                    self.on_failures(chunk.failures)
                    writer.write_rendered(chunk.text, chunk.counts.classified)
                    destination.commit(chunk.counts, chunk.key)
                    counts.add(chunk.counts)
                    self.on_progress(chunk.counts.classified + chunk.counts.failed)
                    if stop.signal is not None:
                        break
                else:
                    writer.close()
            except KeyboardInterrupt:  # a second Ctrl-C
                if not destination.resumable:
                    raise JobInterrupted(counts, partly=True) from None
                stop.signal = signal.SIGINT
            except BrokenPipeError:  # the reader left: the caller ends quietly
                raise
            except OSError as exc:  # a full disk or device: a journal keeps what it recorded
                raise destination.failed(exc) from None
        if stop.signal is not None:
            if hasattr(done, "close"):
                done.close()  # no more work handed out; the workers end
            if not destination.resumable:  # a stream: what was written stays, complete
                writer.close()  # the format's end (JSON's closing bracket)
                raise JobInterrupted(counts, signal=stop.signal)
            saved = destination.save()
            folder = getattr(destination, "folder", None)
            return JobResult(counts, where, 0.0, stop.signal, saved, folder)
        try:
            destination.publish()
        except (BrokenPipeError, FashionOnnxError):  # the reader left; or said already
            raise
        except OSError as exc:  # the last rows, flushed into a full device
            raise destination.failed(exc) from None
        return JobResult(counts, where, 0.0)


def _rendered(
    batches: Iterable[FileBatch], rows: RowFormat, truth: Truth | None, keyed: bool
) -> Iterator[Done]:
    """The Ray engine's batches as finished chunks (rendered here), keyed for a journal."""
    from fashion_onnx.infer.prepare import Preparation
    from fashion_onnx.infer.sources import names_key
    from fashion_onnx.infer.work import Decoded, Job, conclude

    for batch in batches:
        key = names_key([f.path for f in batch.failures] + batch.paths) if keyed else None
        decoded = Decoded(batch.paths, batch.probabilities[:0], batch.failures, key=key)
        yield conclude(Job(Preparation(), rows, truth), decoded, batch.probabilities)


def _any_image(inputs: list[str], on_failures: Callable[[list[Failure]], None]) -> bool:
    """Whether ``inputs`` hold at least one file; if not, the problems met go to
    ``on_failures``. Cheap: discovery stops at the first file. URIs are listed by Ray."""
    from fashion_onnx.infer.decode import Failure
    from fashion_onnx.infer.discover import find_images
    from fashion_onnx.ray.cluster import is_uri

    if any(is_uri(i) for i in inputs):
        return True
    problems = []
    for path, problem in find_images(inputs):
        if problem is None:
            return True
        problems.append(Failure(path, problem))
    on_failures(problems)
    return False


def _is_an_input(output: str, inputs: list[str]) -> bool:
    """Whether ``output`` already exists as one of the files ``inputs`` would classify."""
    from fashion_onnx.infer.discover import GLOB_CHARS, is_image_name

    if not os.path.isfile(output):
        return False  # a file that does not exist yet is no input
    real = os.path.realpath(output)
    for arg in inputs:
        if os.path.isdir(arg):
            if is_image_name(real) and real.startswith(os.path.realpath(arg) + os.sep):
                return True
        elif os.path.exists(arg):
            if os.path.samefile(arg, output):
                return True
        elif GLOB_CHARS & set(arg):
            if any(os.path.realpath(m) == real for m in glob.iglob(arg, recursive=True)):
                return True
    return False


__all__ = ["JobInterrupted", "JobOptions", "JobResult", "Trust", "write_predictions"]
