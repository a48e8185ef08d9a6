"""What the three CLIs share: exit statuses and one-line error reporting. Torch-free."""

from __future__ import annotations

import contextlib
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
