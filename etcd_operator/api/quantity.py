"""Kubernetes quantities ("1Gi", "500m", "1e3") as exact numbers, without I/O."""

from __future__ import annotations

import re
from decimal import Decimal

from etcd_operator.api.common import QUANTITY_PATTERN

_QUANTITY_RE = re.compile(QUANTITY_PATTERN)
_SUFFIXES = {
    "": Decimal(1),
    "n": Decimal("1e-9"),
    "u": Decimal("1e-6"),
    "m": Decimal("1e-3"),
    "k": Decimal("1e3"),
    "M": Decimal("1e6"),
    "G": Decimal("1e9"),
    "T": Decimal("1e12"),
    "P": Decimal("1e15"),
    "E": Decimal("1e18"),
    "Ki": Decimal(2**10),
    "Mi": Decimal(2**20),
    "Gi": Decimal(2**30),
    "Ti": Decimal(2**40),
    "Pi": Decimal(2**50),
    "Ei": Decimal(2**60),
}
_SPLIT_RE = re.compile(r"^([+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+))(.*)$")


def parse_quantity(quantity: str | int) -> Decimal:
    """The value of a quantity: `parse_quantity("1Ki") == 1024`; ValueError if malformed."""
    if isinstance(quantity, int):
        return Decimal(quantity)
    if not _QUANTITY_RE.match(quantity):
        raise ValueError(f"not a Kubernetes quantity: {quantity!r}")
    match = _SPLIT_RE.match(quantity)
    assert match is not None  # the pattern above already accepted it
    number, suffix = match.groups()
    if suffix in _SUFFIXES:
        return Decimal(number) * _SUFFIXES[suffix]
    return Decimal(number + suffix)  # decimal exponent: "1e3", "2E-1"
