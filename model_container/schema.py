"""The abalone row schema and row validation, in pure Python (stdlib only).

Shared by preprocess, the serving input parser and the continuous-training flow (``workflows/``).
A row is ``sex,length,diameter,height,whole_weight,shucked_weight,viscera_weight,shell_weight[,rings]``
with sex in M/F/I and every other field a finite, non-negative number. Parsed rows are tuples
``(sex, float, ..., float)``; ``validate_row`` returns either such a tuple or a reason string, and
``parse_row`` raises :class:`RowError` (which names the line and the field) instead.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

SEXES = ("M", "F", "I")
LABEL = "rings"
FEATURES = ("sex", "length", "diameter", "height", "whole_weight", "shucked_weight", "viscera_weight",
            "shell_weight")
COLUMNS = (*FEATURES, LABEL)
NUMERIC_FEATURES = FEATURES[1:]

Row = tuple  # (sex: str, *measurements: float[, rings: float])


class RowError(ValueError):
    """A row that breaks the schema: ``line`` (1-based), ``field`` (column name or None), ``reason``."""

    def __init__(self, line: int, field: str | None, reason: str):
        self.line, self.field, self.reason = line, field, reason
        where = f"row {line}" + (f", field {field}" if field else "")
        super().__init__(f"{where}: {reason}")

    def to_dict(self) -> dict:
        return {"row": self.line, "field": self.field, "reason": self.reason}


def is_header(fields: Sequence[str]) -> bool:
    """True for a header line naming the columns (``sex,length,...`` with or without ``rings``)."""
    names = tuple(f.strip().lower() for f in fields)
    return names in (FEATURES, COLUMNS)


def parse_row(fields: Sequence[object], line: int, *, labelled: bool = True) -> Row:
    """Parse one row's fields (9 with the ``rings`` label, 8 without); raise RowError on the first bad field."""
    columns = COLUMNS if labelled else FEATURES
    if len(fields) != len(columns):
        raise RowError(line, None, f"expected {len(columns)} fields ({','.join(columns)}), got {len(fields)}")
    sex = fields[0].strip().upper() if isinstance(fields[0], str) else None
    if sex not in SEXES:
        raise RowError(line, "sex", f"unknown sex {str(fields[0])[:20]!r}, expected one of {'/'.join(SEXES)}")
    if all(type(value) is str for value in fields):  # fast path for CSV text; errors are named below
        try:
            numbers = tuple(map(float, fields[1:]))
            if min(numbers) >= 0 and math.isfinite(sum(numbers)):  # a NaN or inf makes the sum non-finite
                return (sex, *numbers)
        except ValueError:
            pass
    return (sex, *(_measurement(value, name, line) for name, value in zip(columns[1:], fields[1:], strict=True)))


def validate_row(fields: Sequence[object], line: int, *, labelled: bool = True) -> Row | str:
    """The parsed row, or the reason it was rejected (``"row 3, field height: not a number: 'x'"``)."""
    try:
        return parse_row(fields, line, labelled=labelled)
    except RowError as error:
        return str(error)


def _measurement(value: object, name: str, line: int) -> float:
    """A finite, non-negative number from a string (CSV) or a JSON number."""
    try:
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            raise TypeError(value)
        number = float(value)
    except (TypeError, ValueError):
        raise RowError(line, name, f"not a number: {str(value)[:20]!r}") from None
    except OverflowError:  # an integer too large for a float (JSON allows any number of digits)
        raise RowError(line, name, f"not finite: an integer of {len(str(value))} digits") from None
    if not math.isfinite(number):
        raise RowError(line, name, f"not finite: {str(value)[:20]!r}")
    if number < 0:
        raise RowError(line, name, f"negative: {number}")
    return number
