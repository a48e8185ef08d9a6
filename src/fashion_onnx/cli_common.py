"""What the commands share: exit statuses, one-line errors (usage errors included),
``--version``, the refusal to replace a model without ``--force``. Torch-free."""

from __future__ import annotations

import contextlib
import os
import sys
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Annotated, Any, NoReturn, TypeVar

import typer
from typer.core import TyperCommand

import fashion_onnx
from fashion_onnx.errors import FashionOnnxError, InvalidArgumentError, MissingExtraError

EXIT_OK = 0  # success
EXIT_INPUT_FAILED = 1  # some inputs failed; the rest were processed
EXIT_USAGE = 2  # usage or configuration error; nothing (or nothing trusted) was produced

T = TypeVar("T")

# click's base of every error it reports (a usage error, a bad parameter). typer 0.27
# carries its own copy of click, earlier typers use click itself: take it from typer's
# public BadParameter, whichever it is.
ClickException: type[Exception] = next(
    c for c in typer.BadParameter.__mro__ if c.__name__ == "ClickException"
)

# What fashion-train and fashion-export need beyond the base install: the [train] extra
# (and a runtime, for the export's verification), from a clone or from the index.
TRAIN_INSTALL = "pip install '.[train,cpu]' in a clone, or pip install 'fashion-onnx[train,cpu]'"
TRAIN_EXTRA_MODULES = frozenset(
    {"torch", "torchvision", "onnx", "onnxscript", "matplotlib", "torchinfo"}
)

# --data-dir, shared by fashion-train and fashion-export.
DataDirOption = Annotated[
    Path | None,
    typer.Option(
        "--data-dir",
        file_okay=False,
        help="Holds FashionMNIST/raw/. [default: $FASHION_ONNX_DATA_DIR or ~/.cache/fashion-onnx]",
        show_default=False,
    ),
]


# --force, shared by every command that writes a model.
ForceOption = Annotated[
    bool,
    typer.Option("--force", help="Replace model files that already exist (refused without it)."),
]


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"fashion-onnx {fashion_onnx.__version__}")
        raise typer.Exit()


# --version, on every command.
VersionOption = Annotated[
    bool,
    typer.Option(
        "--version",
        callback=_print_version,
        is_eager=True,
        help="Show the version and exit.",
    ),
]


class Command(TyperCommand):
    """The commands' click command: a usage error is one ``error:`` line (exit 2),
    and the usage line names arguments plainly (``PATH...``, not typer's ``{PATH}``).

    Use it as ``@app.command(cls=Command)``. Click prints a usage error as a four-line
    box (usage, hint, blank, ``Error: ...``); the README promises one line.
    """

    def collect_usage_pieces(self, ctx: Any) -> list[str]:
        pieces = [self.options_metavar] if self.options_metavar else []
        for param in self.get_params(ctx):
            if param.param_type_name == "argument":
                pieces.append(argument_metavar(param))
            else:
                pieces.extend(param.get_usage_pieces(ctx))
        return pieces

    def main(  # type: ignore[override]  # the same call, standalone or not
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        try:
            code = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except ClickException as exc:
            typer.echo(f"error: {usage_error_line(exc)}", err=True)
            sys.exit(getattr(exc, "exit_code", EXIT_USAGE))
        except typer.Abort:
            typer.echo("Aborted!", err=True)
            sys.exit(1)
        # Not standalone, click returns what ends the command: an Exit's code, or the
        # command's own return value (None for ours).
        sys.exit(code if isinstance(code, int) else EXIT_OK)


def argument_metavar(param: Any) -> str:
    """``CHECKPOINT``, ``PATH...``, ``[NAME]``: click's plain style, not typer's ``{PATH}``."""
    name = param.metavar or (param.name or "").upper()
    if param.nargs != 1:
        name += "..."
    return name if param.required else f"[{name}]"


def usage_error_line(exc: Exception) -> str:
    """A click error in one line, with where to look next (``fashion-train --help``)."""
    message = " ".join(exc.format_message().split())  # type: ignore[attr-defined]
    ctx = getattr(exc, "ctx", None)
    if ctx is not None:
        message += f" (see {ctx.command_path} --help)"
    return message


@contextlib.contextmanager
def extra_needed(command: str, extra: str, modules: frozenset[str], install: str) -> Iterator[None]:
    """Inside, a missing module of ``extra`` (one of ``modules``) becomes a
    MissingExtraError that names ``install``, the command that installs it."""
    try:
        yield
    except ModuleNotFoundError as exc:
        if (exc.name or "").split(".")[0] not in modules:
            raise
        raise MissingExtraError(
            f"{command} needs the [{extra}] extra, and {exc.name!r} is not installed: run {install}"
        ) from exc


def train_extra_needed(command: str) -> contextlib.AbstractContextManager[None]:
    """``extra_needed`` for [train] (from a clone and from the index)."""
    return extra_needed(command, "train", TRAIN_EXTRA_MODULES, TRAIN_INSTALL)


def refuse_to_replace(paths: Iterable[Path], *, force: bool) -> None:
    """Raise InvalidArgumentError naming ``--force`` if any of ``paths`` exists as a file
    and ``force`` is not set. A model from a 20-minute run is not replaced unasked.

    Raises:
        InvalidArgumentError: some of ``paths`` exist.
    """
    existing = [str(p) for p in paths if p.is_file()]
    if existing and not force:
        raise InvalidArgumentError(
            f"{' and '.join(existing)} already exist{'s' if len(existing) == 1 else ''}; "
            "pass --force to replace, or -o another path"
        )


def announce_data_dir(data_dir: Path | None) -> None:
    """Before FashionMNIST is unpacked into a ``--data-dir`` that does not exist: refuse
    when its parent is missing too (a typo, most likely), else say on stderr that it will
    be created. The default data dir is created quietly: it is a cache."""
    if data_dir is None or data_dir.exists():
        return
    parent = data_dir.absolute().parent
    if not parent.is_dir():
        fail(
            f"--data-dir {data_dir}: neither it nor its parent {parent} exists; "
            "create it first, or check the path"
        )
    typer.echo(f"--data-dir {data_dir} does not exist: creating it for FashionMNIST", err=True)


@contextlib.contextmanager
def warnings_as_lines() -> Iterator[None]:
    """Inside, each warning that Python's filters let through (ours are UserWarnings) is
    shown at once as one ``warning: ...`` line on stderr."""

    def show(message: Warning | str, *args: object, **kwargs: object) -> None:
        typer.echo(f"warning: {message}", err=True)

    with warnings.catch_warnings():
        warnings.showwarning = show
        yield


def run_then_exit_at_once(app: typer.Typer) -> NoReturn:
    """Run ``app`` as the console command, then end the process without Python's teardown.

    Tearing down every imported module (numpy's and onnxruntime's included) takes about
    30 ms, a sixth of a small ``fashion-infer`` run. By the time ``app`` returns, every
    file it wrote is closed and published, pools and clusters are shut down: only the
    standard streams are left to flush. Exceptions other than an exit keep the normal
    path (traceback, teardown). Only console entry points call this, never the tests'
    in-process runner.
    """
    try:
        app()
        code = EXIT_OK
    except SystemExit as exc:
        if exc.code is None or isinstance(exc.code, int):
            code = exc.code or EXIT_OK
        else:  # sys.exit("message"): Python prints it and exits 1
            print(exc.code, file=sys.stderr)
            code = 1
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):  # a closed pipe: nothing more to say
            stream.flush()
    os._exit(code)


def fail(message: str, code: int = EXIT_USAGE) -> NoReturn:
    """Print ``error: message`` to stderr and exit with ``code``."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def run_reporting_errors(action: Callable[[], T], *, debug: bool = False) -> T:
    """Run ``action``; turn a FashionOnnxError (or Ctrl-C) into a message and exit status 2.

    With ``debug`` the traceback is shown too.
    """
    try:
        return action()
    except FashionOnnxError as exc:
        if debug:
            raise
        fail(str(exc))
    except KeyboardInterrupt:
        typer.echo("interrupted; no partial output was left behind", err=True)
        sys.exit(130)


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
        # rich's default catches what is printed to stdout while the bar shows and draws it
        # above the bar, on stderr: the rows would never reach a pipe or a file (#32)
        redirect_stdout=False,
        redirect_stderr=False,
    )
    task = bar.add_task("classifying", total=None)
    with bar:
        yield lambda n: bar.advance(task, n)
