"""Compare a command's output with a golden file across CPUs.

Exact in structure and in labels: every character outside the decimal numbers must match,
integers included (a class index, a count). A decimal number (digits, a point, digits) may
differ by one unit of its last printed digit, and only that, with the same number of
printed decimals: float32 arithmetic on an AVX2-only AMD EPYC and on an AVX-512 Intel Xeon
can land either side of a rounding boundary (0.800812 / 0.800813), never further.
"""

from __future__ import annotations

import re
from decimal import Decimal

# A decimal with a point, optionally signed; integers and words are compared as text.
DECIMAL = re.compile(r"-?\d+\.\d+")


def differences(actual: str, expected: str, limit: int = 5) -> list[str]:
    """What keeps ``actual`` from matching ``expected``: up to ``limit`` one-line
    descriptions (line number and both versions), or [] when they match."""
    found: list[str] = []
    got_lines, want_lines = actual.splitlines(True), expected.splitlines(True)
    if len(got_lines) != len(want_lines):
        found.append(f"{len(got_lines)} lines, expected {len(want_lines)}")
    for number, (got, want) in enumerate(zip(got_lines, want_lines, strict=False), 1):
        if got != want and not _same_line(got, want):
            found.append(f"line {number}: {got!r} != {want!r}")
        if len(found) >= limit:
            break
    return found


def _same_line(got: str, want: str) -> bool:
    if DECIMAL.split(got) != DECIMAL.split(want):  # the text between the numbers
        return False
    pairs = zip(DECIMAL.findall(got), DECIMAL.findall(want), strict=True)
    return all(_within_last_digit(a, b) for a, b in pairs)


def _within_last_digit(got: str, want: str) -> bool:
    a, b = Decimal(got), Decimal(want)
    exponent = a.as_tuple().exponent
    if exponent != b.as_tuple().exponent:  # printed with other decimals: a format change
        return False
    assert isinstance(exponent, int)
    return abs(a - b) <= Decimal(1).scaleb(exponent)
