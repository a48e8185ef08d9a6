"""The README's code blocks, read where they are written, for the tests that run them."""

from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"


def blocks(language: str) -> list[str]:
    """Every ```LANGUAGE block of the README, in order."""
    return re.findall(rf"^```{language}\n(.*?)^```", README.read_text(), re.S | re.M)


def block_with(language: str, text: str) -> str:
    """The one ```LANGUAGE block that contains ``text``."""
    found = [b for b in blocks(language) if text in b]
    assert len(found) == 1, f"{len(found)} {language} blocks of the README contain {text!r}"
    return found[0]
