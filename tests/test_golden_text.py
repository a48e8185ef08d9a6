"""The golden comparison allows the last printed digit to round either way, and nothing else."""

from __future__ import annotations

import pytest

from tests.golden_text import differences

GOLDEN = "path,label,class,confidence\nin/000.png,9,Ankle boot,0.800813\n"


def test_identical_text_matches() -> None:
    assert differences(GOLDEN, GOLDEN) == []


@pytest.mark.parametrize("printed", ["0.800812", "0.800814"])
def test_one_unit_of_the_last_digit_either_way_matches(printed: str) -> None:
    assert differences(GOLDEN.replace("0.800813", printed), GOLDEN) == []


@pytest.mark.parametrize(
    "changed",
    [
        GOLDEN.replace("0.800813", "0.800815"),  # two units: not rounding
        GOLDEN.replace("0.800813", "0.80081"),  # fewer decimals: a format change
        GOLDEN.replace("0.800813", "0.8008130"),  # more decimals
        GOLDEN.replace(",9,", ",8,"),  # an integer (the class index) is exact
        GOLDEN.replace("Ankle boot", "Sneaker"),  # a label
        GOLDEN.replace(",0.800813", ", 0.800813"),  # the layout
        GOLDEN + "in/001.png,1,Trouser,0.999999\n",  # a row more
        GOLDEN.replace("\n", "\r\n"),  # line endings
    ],
)
def test_anything_else_is_a_difference(changed: str) -> None:
    assert differences(changed, GOLDEN) != []


def test_rounding_across_a_carry_matches() -> None:
    golden = "x 0.999999 1.000000\n"
    assert differences("x 1.000000 0.999999\n", golden) == []
