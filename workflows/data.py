"""The abalone data for local runs: a path (flag or ABALONE_DATA), else a cached download from UCI."""

from __future__ import annotations

import os
import urllib.error
import urllib.request
from pathlib import Path

from mlops_core.errors import ConfigError

UCI_URL = "https://archive.ics.uci.edu/ml/machine-learning-databases/abalone/abalone.data"
DATA_ENV = "ABALONE_DATA"
DEFAULT_CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "mlops_core"


def abalone_data(path: str | Path | None = None, *, cache_dir: str | Path | None = None, url: str = UCI_URL,
                 timeout: float = 30.0) -> Path:
    """The data file to use: ``path``, else $ABALONE_DATA, else the UCI file (downloaded once, cached)."""
    explicit = path or os.environ.get(DATA_ENV)
    if explicit:
        found = Path(explicit).expanduser()
        if not found.is_file():
            raise ConfigError(f"{DATA_ENV} / --data: {found} is not a file; pass the path of abalone.data "
                              f"(UCI format, no header)")
        return found
    cached = Path(cache_dir or DEFAULT_CACHE) / "abalone.data"
    if cached.is_file():
        return cached
    cached.parent.mkdir(parents=True, exist_ok=True)
    partial = cached.with_suffix(".part")
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            partial.write_bytes(response.read())
    except (urllib.error.URLError, OSError) as exc:
        partial.unlink(missing_ok=True)
        reason = getattr(exc, "reason", exc)
        raise ConfigError(f"{DATA_ENV}: could not download the abalone data from {url} ({reason}); if this "
                          f"machine is offline, pass --data PATH or set {DATA_ENV}=PATH") from None
    partial.replace(cached)
    return cached
