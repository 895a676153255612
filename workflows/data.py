"""The abalone data for local runs: a path (flag or ABALONE_DATA), else the copy shipped with this package.

The shipped file is the UCI abalone data set (4,177 rows, no header; Nash, Sellers, Talbot, Cawthorn and
Ford, 1994; https://doi.org/10.24432/C55C7W; CC BY 4.0), so the local release needs no network.
"""

from __future__ import annotations

import os
from pathlib import Path

from mlops_core.errors import ConfigError

DATA_ENV = "ABALONE_DATA"
SHIPPED = Path(__file__).with_name("abalone.data")


def abalone_data(path: str | Path | None = None) -> Path:
    """The data file to use: ``path``, else $ABALONE_DATA, else the shipped UCI file."""
    explicit = path or os.environ.get(DATA_ENV)
    if not explicit:
        return SHIPPED
    found = Path(explicit).expanduser()
    if not found.is_file():
        raise ConfigError(f"{DATA_ENV} / --data: {found} is not a file; pass the path of an abalone data file "
                          f"(UCI format, no header), or neither to use the shipped copy")
    return found
