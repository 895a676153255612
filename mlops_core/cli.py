"""Shared plumbing of the bin/ scripts: logging set-up and exit codes (0 ok, 1 failed, 2 config)."""

from __future__ import annotations

import sys
from collections.abc import Callable

from botocore.exceptions import NoCredentialsError, PartialCredentialsError, ProfileNotFound

from mlops_core.errors import ConfigError, MlopsError
from mlops_core.logs import configure_logging, get_logger, wants_json

EXIT_OK, EXIT_FAILED, EXIT_CONFIG = 0, 1, 2
CREDENTIALS_HELP = ("no usable AWS credentials: set AWS_PROFILE (see `aws configure`) or AWS_ACCESS_KEY_ID and "
                    "AWS_SECRET_ACCESS_KEY, or run where a role provides them (CodeBuild, an instance profile); "
                    "for the embedded AWS, any dummy values with AWS_ENDPOINT_URL")


def run(main: Callable[[], int | None]) -> None:
    """Run a script's ``main``: configure logging, turn errors into a message and an exit code."""
    configure_logging()
    try:
        code = main() or EXIT_OK
    except ConfigError as exc:
        for problem in exc.problems:
            print(f"configuration error: {problem}", file=sys.stderr)
        code = EXIT_CONFIG
    except (NoCredentialsError, PartialCredentialsError, ProfileNotFound) as exc:
        print(f"configuration error: {CREDENTIALS_HELP} ({exc})", file=sys.stderr)
        code = EXIT_CONFIG
    except MlopsError as exc:  # said once: a JSON event where logs are JSON (CI, CodeBuild), else a plain line
        if wants_json(sys.stderr):
            get_logger("cli").error("failed", error_type=type(exc).__name__, error=str(exc))
        else:
            print(f"error: {exc}", file=sys.stderr)
        code = EXIT_FAILED
    sys.exit(code)
