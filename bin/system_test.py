#!/usr/bin/env python3
"""System tests of the deployed Age Calculator API (the release's test stage): labelled rows of the abalone data
must get ages in range, bad input a 4xx. Works against API Gateway's stage URL or the local page of
``bin/demo --keep-serving``.

    python bin/system_test.py --api-url https://ID.execute-api.REGION.amazonaws.com/prod

Exit 0 every check passed, 1 a check failed, 2 configuration.
"""

from __future__ import annotations

import argparse
import os

from mlops_core.cli import run
from mlops_core.errors import ConfigError
from mlops_core.webapp.system_tests import run_system_tests
from workflows.data import abalone_data


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--api-url", default=os.environ.get("API_URL"),
                        help="the API's base URL, /predict is appended (default $API_URL)")
    parser.add_argument("--data", help="labelled abalone rows (default: the shipped UCI file)")
    parser.add_argument("--rows", type=int, default=20, help="labelled rows sent, spread over the file (default 20)")
    parser.add_argument("--max-error", type=float, default=3.0,
                        help="the known rows' mean absolute error may be at most this many rings (default 3)")
    args = parser.parse_args(argv)
    if not args.api_url or not args.api_url.startswith(("http://", "https://")):
        raise ConfigError(f"--api-url (or API_URL) must be an http(s) URL, got {args.api_url!r}")
    lines = [line.split(",") for line in abalone_data(args.data).read_text().split() if line]
    rows = lines[:: max(1, len(lines) // max(args.rows, 1))][: args.rows]
    checks = run_system_tests(args.api_url, rows, max_error=args.max_error)
    for check in checks:
        print(f"{'PASS' if check.ok else 'FAIL'} {check.name}: {check.detail}")
    failed = sum(not check.ok for check in checks)
    print(f"{len(checks) - failed} of {len(checks)} system tests passed")
    return 1 if failed else 0


if __name__ == "__main__":
    run(lambda: main())
