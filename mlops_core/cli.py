"""Shared plumbing of the bin/ scripts: logging set-up and exit codes (0 ok, 1 failed, 2 config)."""

from __future__ import annotations

import sys
from collections.abc import Callable

from mlops_core.errors import ConfigError, MlopsError
from mlops_core.logs import configure_logging, get_logger

EXIT_OK, EXIT_FAILED, EXIT_CONFIG = 0, 1, 2


def run(main: Callable[[], int | None]) -> None:
    """Run a script's ``main``: configure logging, turn errors into a message and an exit code."""
    configure_logging()
    try:
        code = main() or EXIT_OK
    except ConfigError as exc:
        for problem in exc.problems:
            print(f"configuration error: {problem}", file=sys.stderr)
        code = EXIT_CONFIG
    except MlopsError as exc:
        get_logger("cli").error("failed", error_type=type(exc).__name__, error=str(exc))
        print(f"error: {exc}", file=sys.stderr)
        code = EXIT_FAILED
    sys.exit(code)
