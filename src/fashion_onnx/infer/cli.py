"""``fashion-infer PATH...``: classify image files with the ONNX model (torch-free).

The command is a thin shell around ``Classifier.classify_files``: it parses options,
writes rows as results stream in, names each bad file on stderr, and maps errors to
exit statuses. Exit status: 0 every input was classified; 1 some inputs failed (each
named on stderr), the rest were classified; 2 usage or configuration error.
"""

from __future__ import annotations

import contextlib
import csv
import glob
import os
import signal
import sys
import time
from collections.abc import Callable, Generator, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, TextIO

import typer

from fashion_onnx.cli_common import (
    EXIT_INPUT_FAILED,
    EXIT_OK,
    Command,
    VersionOption,
    fail,
    run_reporting_errors,
    run_then_exit_at_once,
    warnings_as_lines,
)
from fashion_onnx.constants import DEVICES

if TYPE_CHECKING:
    import numpy as np

    from fashion_onnx.infer.abstain import Abstain
    from fashion_onnx.infer.decode import Failure
    from fashion_onnx.infer.files import FileBatch
    from fashion_onnx.infer.journal import Journal, Stop
    from fashion_onnx.infer.output import RowFormat, RowWriter
    from fashion_onnx.infer.prepare import Preparation
    from fashion_onnx.infer.work import Counts, Done, Truth

app = typer.Typer(add_completion=False, rich_markup_mode=None)


def _choice(value: str, choices: tuple[str, ...], option: str) -> str:
    if value not in choices:
        raise typer.BadParameter(f"{value!r} is not one of {', '.join(choices)}", param_hint=option)
    return value


@app.command(
    cls=Command,  # usage errors as one error: line, --version
    help="Classify image files with the ONNX model (torch-free).\n\n"
    "Directories are walked recursively in the order the filesystem lists them; rows are "
    "written as results arrive, in that order.\n\n"
    "With --engine ray the same job runs on a Ray cluster "
    "(pip install 'fashion-onnx[ray,cpu]').\n\n"
    "Exit status: 0 every input was classified; 1 some inputs failed (each named on "
    "stderr), the rest were classified; 2 usage or configuration error (no inputs found, "
    "missing or incompatible model, unusable device or cluster)."
)
def infer_command(
    paths: Annotated[
        list[str],
        typer.Argument(
            metavar="PATH",
            help="Image files, directories (recursive) or globs; with --engine ray also "
            "URIs (s3://bucket/prefix/).",
        ),
    ],
    model: Annotated[
        str,
        typer.Option(
            help="mlp or cnn, any case (the models embedded in the package; the CNN makes "
            "fewer mistakes, the MLP is faster), or an ONNX file (export a .pth first with "
            "fashion-export)."
        ),
    ] = "mlp",
    device: Annotated[str, typer.Option(help="auto, cuda or cpu.")] = "auto",
    batch_size: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="Images per engine call. [default: 512 on CPU, 4096 on CUDA]",
            show_default=False,
        ),
    ] = None,
    threads: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="Engine threads when the engine runs in this process (fewer than 256 files, "
            "or --workers 1). [default: onnxruntime's choice]",
            show_default=False,
        ),
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="Worker processes that decode (and on the CPU, classify). "
            "[default: the CPUs available]",
            show_default=False,
        ),
    ] = None,
    invert: Annotated[
        str, typer.Option(help="auto (light backgrounds are inverted), always or never.")
    ] = "auto",
    fit: Annotated[
        str,
        typer.Option(
            help="trim (cut pictures that are not 28x28 to the garment, then fit and centre "
            "it, as FashionMNIST was made: product photos with margins) or full (fit the "
            "whole frame)."
        ),
    ] = "trim",
    fmt: Annotated[
        str | None,
        typer.Option(
            "--format",
            help="table, csv, json, jsonl; or parquet (--engine ray, -o a directory or URI). "
            "[default: from -o's suffix (.csv, .json, .jsonl, .parquet, any case), else table]",
            show_default=False,
        ),
    ] = None,
    output: Annotated[
        str | None,
        typer.Option(
            "--output",
            "-o",
            help="Write here (a file, atomically; for parquet a directory or URI). A file's "
            "rows are journaled in FILE.partial as they come (see --resume). "
            "[default: stdout]",
            show_default=False,
        ),
    ] = None,
    resume: Annotated[
        bool,
        typer.Option(
            "--resume",
            help="Finish the run that -o FILE's journal (FILE.partial) holds, after a kill, "
            "Ctrl-C or a full disk: what it finished is skipped. With no journal, a normal "
            "run.",
        ),
    ] = False,
    top_k: Annotated[int, typer.Option(min=1, max=10, help="Classes shown per image.")] = 1,
    labels: Annotated[
        Path | None,
        typer.Option(
            help="CSV with file and class columns: report how many were right, and mark the "
            "table's wrong rows. Its paths are relative to the CSV's own folder (or "
            "absolute); class names in any case.",
            show_default=False,
        ),
    ] = None,
    progress: Annotated[
        bool | None,
        typer.Option(
            "--progress/--no-progress",
            help="Progress on stderr. [default: when stderr is a terminal]",
            show_default=False,
        ),
    ] = None,
    engine: Annotated[
        str, typer.Option(help="local (processes on this machine) or ray (Ray Data).")
    ] = "local",
    ray_address: Annotated[
        str | None,
        typer.Option(
            help="The Ray cluster, HOST:PORT. [default: $RAY_ADDRESS, else a local Ray]",
            show_default=False,
        ),
    ] = None,
    min_confidence: Annotated[
        float | None,
        typer.Option(
            min=0.0,
            max=1.0,
            help="Rows whose (calibrated) confidence is below P read unknown: label -1, "
            "class unknown; the summary counts them.",
            metavar="P",
            show_default=False,
        ),
    ] = None,
    ood_score: Annotated[
        bool,
        typer.Option(
            "--ood-score",
            help="Add an ood_score column: the energy -logsumexp(logits); higher = less "
            "like FashionMNIST.",
        ),
    ] = False,
    abstain: Annotated[
        bool,
        typer.Option(
            "--abstain",
            help="Rows whose ood_score is above the model's measured threshold (it keeps 95% "
            "of the real test set) read unknown. [default: off]",
        ),
    ] = False,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks.")] = False,
    version: VersionOption = False,
) -> None:
    _choice(device, DEVICES, "--device")
    from fashion_onnx.infer.prepare import FIT_CHOICES, INVERT_CHOICES

    _choice(invert, INVERT_CHOICES, "--invert")
    _choice(fit, FIT_CHOICES, "--fit")
    fmt = pick_format(fmt, output)
    _choice(engine, ("local", "ray"), "--engine")
    if fmt == "parquet" and (engine != "ray" or output is None):
        raise typer.BadParameter(
            "parquet needs --engine ray and -o DIR_OR_URI", param_hint="--format"
        )
    if output is not None and fmt != "parquet" and os.path.isdir(output):
        raise typer.BadParameter(f"{output} is a directory; give a file", param_hint="--output")
    if (ood_score or abstain) and engine == "ray":
        fail("--ood-score and --abstain need the local engine (--engine local)")
    if resume and output is None:
        raise typer.BadParameter(
            "needs -o FILE (the journal is kept beside it)", param_hint="--resume"
        )
    settings = Settings(
        model,
        device,
        batch_size,
        threads,
        workers,
        invert,
        fit,
        fmt,
        output,
        top_k,
        engine,
        ray_address,
        Trust(min_confidence, ood_score, abstain),
        resume,
    )
    show_progress = sys.stderr.isatty() if progress is None else progress
    with warnings_as_lines():  # the model's metadata, a CUDA fallback: one line each
        code = run_reporting_errors(
            lambda: run(paths, settings, labels=labels, progress=show_progress), debug=debug
        )
    raise typer.Exit(code)


def main() -> None:
    # No BLAS is used here or in the workers (they fork from this process): one OpenBLAS
    # thread spares the ~70 ms of CPU numpy's import spends starting a pool of them.
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    run_then_exit_at_once(app)


def pick_format(fmt: str | None, output: str | None) -> str:
    """--format as given, else the one -o's suffix names, else table. A suffix that names
    another format than the one given is refused (``--format json -o out.csv``)."""
    from fashion_onnx.infer.output import FORMATS, format_of

    implied = format_of(output) if output is not None else None
    if fmt is None:
        return implied[1] if implied else "table"
    _choice(fmt, (*FORMATS, "parquet"), "--format")
    if implied is not None and implied[1] != fmt:
        fail(
            f"--output {output} ends in {implied[0]}, but --format is {fmt}: change one of "
            "them (or leave --format out: the suffix decides)"
        )
    return fmt


# -- the driver ---------------------------------------------------------------------


@dataclass(frozen=True)
class Settings:
    model: str
    device: str
    batch_size: int | None
    threads: int | None
    workers: int | None
    invert: str
    fit: str
    fmt: str
    output: str | None
    top_k: int
    engine: str  # local | ray
    ray_address: str | None
    trust: Trust | None = None  # --min-confidence, --ood-score, --abstain
    resume: bool = False  # go on from -o's journal, if there is one


@dataclass(frozen=True)
class Trust:
    min_confidence: float | None = None
    ood_score: bool = False
    abstain: bool = False  # at the model's own threshold (metadata ood_threshold)

    def rule(self, threshold: float | None, model: str) -> Abstain | None:
        """The rows' Abstain, None when no option asks for one."""
        from fashion_onnx.infer.abstain import Abstain

        if self.abstain and threshold is None:
            fail(f"--abstain: {model} records no ood_threshold; export it with fashion-export")
        if self.min_confidence is None and not self.ood_score and not self.abstain:
            return None
        return Abstain(self.min_confidence, threshold if self.abstain else None, self.ood_score)


@dataclass(frozen=True)
class Labels:
    """--labels as read: a CSV's rows (the file as written, its resolved path, its class),
    or the class indices of an IDX label file or a ``.npy`` (for array inputs, in order)."""

    csv_path: Path
    rows: list[tuple[str, str, str]]
    indices: np.ndarray | None = None

    def truth(self, class_names: tuple[str, ...]) -> Truth:
        """What the workers judge rows by: each listed file's resolved path -> its true
        class as the model names it (any case in the CSV), or None for a name that is no
        class (one warning per such name); or the array images' classes, in order."""
        from fashion_onnx.infer.work import Truth

        if self.indices is not None:
            return Truth(by_index=tuple(class_names[i] for i in self.indices.tolist()))
        canonical = {name.lower(): name for name in class_names}
        unknown: dict[str, int] = {}
        truth: dict[str, str | None] = {}
        for _, resolved, given in self.rows:
            name = canonical.get(given.strip().lower())
            if name is None:
                unknown[given] = unknown.get(given, 0) + 1
            truth[resolved] = name
        for given, count in unknown.items():
            warn(
                f"--labels {self.csv_path}: {given!r} is not one of the model's classes "
                f"({', '.join(class_names)}); its {count} file(s) are not counted"
            )
        return Truth(by_path=truth)

    def warn_if_unmatched(self, counts: Counts) -> None:
        """A warning that names the rule when no listed file was among the inputs."""
        if self.indices is not None and not counts.listed and len(self.indices):
            warn(
                f"--labels {self.csv_path}: its {len(self.indices)} labels are for array "
                "inputs (IDX, .npy, .npz), in order, and there were none"
            )
        if counts.listed or not self.rows:
            return
        first = ", ".join(written for written, _, _ in self.rows[:3])
        more = ", ..." if len(self.rows) > 3 else ""
        warn(
            f"--labels {self.csv_path}: none of its {len(self.rows)} files was among the "
            f"inputs ({first}{more}); its paths are relative to the CSV's folder, "
            f"{self.csv_path.resolve().parent}"
        )


def warn(message: str) -> None:
    typer.echo(f"warning: {message}", err=True)


def read_labels(csv_path: Path) -> Labels:
    """Read --labels (``file`` is relative to the CSV's folder; or an IDX label file or a
    ``.npy`` of class indices, for array inputs) or exit 2 with the reason."""
    from fashion_onnx.infer.arrays import is_array_file, read_labels_array

    if is_array_file(str(csv_path)):
        return Labels(csv_path, [], read_labels_array(str(csv_path)))
    try:
        with csv_path.open(newline="", encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
    except OSError as exc:
        fail(f"--labels {csv_path}: {exc.strerror}")
    if not rows or not {"file", "class"} <= rows[0].keys():
        fail(f"--labels {csv_path}: expected a CSV with 'file' and 'class' columns")
    for line, row in enumerate(rows, start=2):
        if not row["file"] or row["class"] is None:
            fail(f"--labels {csv_path}, line {line}: expected a file and a class")
    return Labels(
        csv_path,
        [(r["file"], str((csv_path.parent / r["file"]).resolve()), r["class"]) for r in rows],
    )


def any_image(inputs: list[str]) -> bool:
    """Whether ``inputs`` hold at least one file; if not, name the problems met on stderr.
    Cheap: discovery stops at the first file. URIs are listed by Ray, not here."""
    from fashion_onnx.infer.discover import find_images
    from fashion_onnx.infer.ray_cluster import is_uri

    if any(is_uri(i) for i in inputs):
        return True
    problems = []
    for path, problem in find_images(inputs):
        if problem is None:
            return True
        problems.append(f"{path}: {problem}")
    for line in problems:
        typer.echo(line, err=True)
    return False


def is_an_input(output: str, inputs: list[str]) -> bool:
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


@contextlib.contextmanager
def open_output(guard_stdout: bool) -> Iterator[TextIO]:
    """stdout (a file is written through its journal, ``open_journal``).

    ``guard_stdout``: rows go to a private copy of stdout while file descriptor 1 points
    at stderr, so that nothing a library prints there (Ray does) can mix into the rows.
    """
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):
        fd = -1  # not a real file (a test runner captures it): nothing else can write there
    if not guard_stdout or fd != 1:
        yield sys.stdout
        return
    sys.stdout.flush()
    saved = os.dup(1)
    os.dup2(2, 1)
    try:
        with os.fdopen(os.dup(saved), "w", encoding="utf-8", newline="") as rows:
            yield rows
    finally:
        os.dup2(saved, 1)
        os.close(saved)


@contextlib.contextmanager
def progress_bar(enabled: bool) -> Iterator[Callable[[int], None]]:
    """A rich counter on stderr (rich is imported only when shown); yields ``advance(n)``."""
    if not enabled:
        yield lambda n: None
        return
    from rich.console import Console
    from rich.progress import MofNCompleteColumn, Progress, SpinnerColumn, TimeElapsedColumn

    bar = Progress(
        SpinnerColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        transient=True,
    )
    task = bar.add_task("classifying", total=None)
    with bar:
        yield lambda n: bar.advance(task, n)


def report_failures(failures: Iterable[Failure]) -> None:
    for failure in failures:
        typer.echo(f"{failure.path}: {failure.reason}", err=True)


def open_journal(
    s: Settings, inputs: list[str], model_bytes: bytes, labels: Path | None
) -> Journal:
    """-o FILE's journal: new, or the one --resume goes on from (refusals are one line)."""
    from fashion_onnx.infer.journal import Journal

    assert s.output is not None
    return Journal.open(s.output, run_fingerprint(s, inputs, model_bytes, labels), resume=s.resume)


def run_fingerprint(
    s: Settings, inputs: list[str], model_bytes: bytes, labels: Path | None
) -> dict[str, object]:
    """What --resume must find unchanged: the inputs, the model, the options that change rows."""
    from fashion_onnx.infer.journal import fingerprint

    options = {"--format": s.fmt, "--top-k": s.top_k, "--invert": s.invert, "--fit": s.fit}
    options |= {"--device": s.device, "--engine": s.engine}
    trust = s.trust or Trust()
    options |= {"--min-confidence": trust.min_confidence, "--ood-score": trust.ood_score}
    options |= {"--abstain": trust.abstain}
    return fingerprint(inputs, model_bytes, options, str(labels) if labels else None)


def write_rows(
    done_chunks: Iterable[Done],
    writer: RowWriter,
    advance: Callable[[int], None],
    journal: Journal | None = None,
    stop: Stop | None = None,
) -> Counts:
    """Write each finished chunk's rendered rows and name its failures, as they come;
    add up the counts; record each chunk in the journal. Nothing here is per image.
    Stops after the chunk during which ``stop`` got a signal (no footer then)."""
    from fashion_onnx.infer.work import Counts

    counts = Counts()
    try:
        for done in done_chunks:
            report_failures(done.failures)
            writer.write_rendered(done.text, done.counts.classified)
            if journal is not None:
                assert done.key is not None, "a journaled run's job is keyed"
                journal.commit(done.counts, done.key)
            counts.add(done.counts)
            advance(done.counts.classified + done.counts.failed)
            if stop is not None and stop.signal is not None:
                return counts
        writer.close()
    except OSError as exc:  # the disk is full: the journal keeps what it recorded
        if journal is None:
            raise
        raise journal.failed(exc) from None
    return counts


def check_output_before_ray(
    s: Settings, inputs: list[str], model_bytes: bytes, labels: Path | None
) -> None:
    """What -o's journal or Parquet destination would refuse, refused before connecting to
    Ray (seconds, or a cluster's time-out) rather than after it. Nothing is written."""
    from fashion_onnx.infer import ray_engine, ray_parquet
    from fashion_onnx.infer.journal import Journal

    if s.output is None:
        return
    uris = any(ray_engine.is_uri(i) for i in inputs)
    if uris and s.resume:  # every format: Ray lists URIs, so no part can be skipped
        fail("--resume takes local paths on --engine ray, not URIs")
    if s.fmt != "parquet":
        Journal.check(s.output, run_fingerprint(s, inputs, model_bytes, labels), resume=s.resume)
    elif not uris:
        fingerprint = run_fingerprint(s, inputs, model_bytes, None)
        ray_parquet.check_destination(s.output, fingerprint, s.resume)


def write_parquet(
    s: Settings, inputs: list[str], model: bytes, preparation: Preparation, progress: bool
) -> Counts:
    """--format parquet: local inputs as resumable parts (``ray_parquet``); URIs through
    Ray Data's reader and writer, in one go."""
    from fashion_onnx.infer import ray_engine, ray_parquet
    from fashion_onnx.infer.work import Counts

    assert s.output is not None
    if any(ray_engine.is_uri(i) for i in inputs):
        classified, failures = ray_engine.write_parquet_on_ray(
            inputs, s.output, model=model, device=s.device, preparation=preparation
        )
        report_failures(failures)
        return Counts(classified=classified, failed=len(failures))
    with progress_bar(progress) as advance:
        classified, failed, failures = ray_parquet.write_parts_on_ray(
            inputs,
            s.output,
            model=model,
            device=s.device,
            preparation=preparation,
            fingerprint=run_fingerprint(s, inputs, model, None),
            resume=s.resume,
            advance=advance,
        )
    report_failures(failures)
    return Counts(classified=classified, failed=failed)


def render_ray_batches(
    batches: Iterable[FileBatch], rows: RowFormat, truth: Truth | None, journal: Journal | None
) -> Iterator[Done]:
    """The Ray engine's batches as finished chunks (the driver renders them), keyed for
    the ``journal`` when there is one."""
    from fashion_onnx.infer.prepare import Preparation
    from fashion_onnx.infer.sources import names_key
    from fashion_onnx.infer.work import Decoded, Job, conclude

    for batch in batches:
        key = None
        if journal is not None:
            key = names_key([f.path for f in batch.failures] + batch.paths)
        decoded = Decoded(batch.paths, batch.probabilities[:0], batch.failures, key=key)
        yield conclude(Job(Preparation(), rows, truth), decoded, batch.probabilities)


def run(inputs: list[str], s: Settings, *, labels: Path | None, progress: bool) -> int:
    """Classify every image under ``inputs``; return the exit status (0 or 1)."""
    from fashion_onnx.infer.classifier import Classifier
    from fashion_onnx.infer.files import default_workers, run_job
    from fashion_onnx.infer.output import RowWriter
    from fashion_onnx.infer.prepare import check_fit, check_invert
    from fashion_onnx.infer.sources import array_inputs, check_arrays, chunks
    from fashion_onnx.infer.work import Counts, Job

    started = time.perf_counter()
    arrays = array_inputs(inputs)
    if arrays and s.engine == "ray":
        fail(f"{arrays[0]}: array files are classified by the local engine (--engine local)")
    check_arrays(arrays)
    if not arrays and not any_image(inputs):
        fail("no image files found in the given paths")
    if s.output is not None and s.fmt != "parquet" and is_an_input(s.output, inputs):
        fail(f"--output {s.output} is one of the inputs; choose another path")
    known = read_labels(labels) if labels is not None else None
    on_ray = s.engine == "ray"
    # With worker processes, this process forks them: keep its own engine single-threaded
    # (no engine threads to fork) and not spinning (the workers need the cores). On Ray it
    # only checks the model and names the classes.
    forks = on_ray or (s.workers or default_workers()) > 1
    classifier = Classifier(
        s.model,
        device="cpu" if on_ray else s.device,
        batch_size=s.batch_size,
        threads=s.threads or (1 if forks else None),
        invert=check_invert(s.invert),
        fit=check_fit(s.fit),
        spinning=not forks,
    )
    truth = known.truth(classifier.class_names) if known is not None else None
    with contextlib.ExitStack() as stack:
        if on_ray:
            from fashion_onnx.infer import ray_engine

            check_output_before_ray(s, inputs, classifier.model_bytes, labels)
            cluster = ray_engine.connect(s.ray_address, num_cpus=s.workers)
            stack.callback(ray_engine.disconnect, cluster)
            where = f"{cluster.describe()}, {ray_engine.actor_device(s.device).upper()} actors"
            model, preparation = classifier.model_bytes, classifier.preparation
            if s.fmt == "parquet":
                counts = write_parquet(s, inputs, model, preparation, progress)
        else:
            where = classifier.provider
        if s.fmt != "parquet":
            advance = stack.enter_context(progress_bar(progress))
            journal = stop = None
            if s.output is not None:
                from fashion_onnx.infer.journal import Stop

                journal = open_journal(s, inputs, classifier.model_bytes, labels)
                stack.callback(journal.close)
                stream = journal.stream
                stop = stack.enter_context(Stop())
            else:
                stream = stack.enter_context(open_output(guard_stdout=on_ray))
            trust = (s.trust or Trust()).rule(classifier.engine.contract.ood_threshold, s.model)
            writer = RowWriter(
                stream,
                s.fmt,
                classifier.class_names,
                s.top_k,
                labelled=known is not None,
                abstain=trust,
                resumed_rows=journal.rows_before if journal else None,
            )
            if on_ray:
                batches = ray_engine.classify_on_ray(
                    inputs,
                    model=model,
                    device=s.device,
                    preparation=preparation,
                    skip=journal.skip if journal is not None else None,
                )
                done: Iterator[Done] = render_ray_batches(batches, writer.rows, truth, journal)
            else:
                from fashion_onnx.infer.sources import chunk_names

                job = Job(classifier.preparation, writer.rows, truth, keyed=journal is not None)
                tasks = chunks(inputs)
                if journal is not None:
                    tasks = journal.track(tasks, chunk_names)
                done = run_job(job, tasks, classifier.engine, s.workers)
            if journal is None:
                counts = write_rows(done, writer, advance)
            else:
                counts = Counts()
                counts.add(journal.saved)  # what earlier runs finished
                advance(counts.classified + counts.failed)
                try:
                    counts.add(write_rows(done, writer, advance, journal, stop))
                except KeyboardInterrupt:  # a second Ctrl-C
                    assert stop is not None
                    stop.signal = signal.SIGINT
                if stop is not None and stop.signal is not None:
                    if isinstance(done, Generator):
                        done.close()  # no more work handed out; the workers end
                    saved = journal.save()
                    typer.echo(
                        f"interrupted: {saved:,} of the images are saved in "
                        f"{journal.folder}; run the same command with --resume to finish",
                        err=True,
                    )
                    return 128 + stop.signal
                journal.publish()
    if known is not None and s.fmt != "parquet":
        known.warn_if_unmatched(counts)
    seconds = time.perf_counter() - started
    summary = (
        f"{counts.classified} image(s) classified, {counts.failed} failed, on {where}, "
        f"fit {s.fit}, "
        f"{counts.classified / seconds:,.0f} images/s ({seconds:.2f}s)"
    )
    if known is not None:
        share = f" ({100 * counts.right / counts.judged:.1f}%)" if counts.judged else ""
        summary += f"; correct: {counts.right}/{counts.judged}{share}"
    if s.trust is not None and (s.trust.min_confidence is not None or s.trust.abstain):
        summary += f"; unknown: {counts.unknown}"
    typer.echo(summary, err=True)
    return EXIT_INPUT_FAILED if counts.failed else EXIT_OK
