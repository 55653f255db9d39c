"""Resource quantities (`100m`, `1Gi`, `1e3`, `0.5`) as exact fractions."""

from __future__ import annotations

import functools
import re
from fractions import Fraction

SUFFIXES = {
    "": Fraction(1), "n": Fraction(1, 10**9), "u": Fraction(1, 10**6), "m": Fraction(1, 1000),
    "k": Fraction(10**3), "M": Fraction(10**6), "G": Fraction(10**9), "T": Fraction(10**12),
    "P": Fraction(10**15), "E": Fraction(10**18),
    "Ki": Fraction(2**10), "Mi": Fraction(2**20), "Gi": Fraction(2**30), "Ti": Fraction(2**40),
    "Pi": Fraction(2**50), "Ei": Fraction(2**60),
}
QUANTITY = re.compile(r"^([+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+))(?:([eE][+-]?[0-9]+)|(Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE])?)$")


def parse_quantity(value) -> Fraction:
    """The quantity's exact value; raises ValueError for anything upstream would reject."""
    if isinstance(value, str):
        return _parse_text(value)
    if isinstance(value, bool):
        raise ValueError(f"invalid quantity {value!r}")
    if isinstance(value, int):
        return Fraction(value)
    if isinstance(value, float):
        return Fraction(value).limit_denominator(10**9)
    raise ValueError(f"invalid quantity {value!r}")


@functools.lru_cache(maxsize=4096)
def _parse_text(value: str) -> Fraction:
    m = QUANTITY.match(value.strip())
    if not m:
        raise ValueError(f"invalid quantity {value!r}")
    number = Fraction(m.group(1))
    if m.group(2):
        return number * Fraction(10) ** int(m.group(2)[1:])
    return number * SUFFIXES[m.group(3) or ""]


def is_valid_quantity(value) -> bool:
    try:
        parse_quantity(value)
    except ValueError:
        return False
    return True


def milli_value(value) -> int:
    """Rounded up to whole thousandths, as upstream's MilliValue (cpu)."""
    q = parse_quantity(value) * 1000
    return -((-q.numerator) // q.denominator)


def int_value(value) -> int:
    """Rounded up to a whole number, as upstream's Value (memory, pods)."""
    q = parse_quantity(value)
    return -((-q.numerator) // q.denominator)
