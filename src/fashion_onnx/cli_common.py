"""What the three CLIs share: exit statuses and one-line error reporting. Torch-free."""

from __future__ import annotations

import contextlib
import os
import sys
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Annotated, NoReturn, TypeVar

import typer

from fashion_onnx.errors import FashionOnnxError

EXIT_OK = 0  # success
EXIT_INPUT_FAILED = 1  # some inputs failed; the rest were processed
EXIT_USAGE = 2  # usage or configuration error; nothing (or nothing trusted) was produced

T = TypeVar("T")

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
