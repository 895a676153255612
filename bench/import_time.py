"""Cold import time of mlops_core against boto3, measured in the same run.

Each sample is a fresh interpreter; samples of the two alternate so machine noise hits both alike.
"mlops_core (full)" also loads every core module (client factory, polling engine, config, logging),
which is what a driver script pays; "mlops_core.project" loads the whole plan with every service module it
composes (what bin/bootstrap.py pays). Goal: each <= 1.3x boto3.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys

CASES = {
    "boto3": "import boto3",
    "mlops_core": "import mlops_core",
    "mlops_core (full)": "import mlops_core.aws, mlops_core.polling, mlops_core.config, mlops_core.cli",
    "mlops_core.project": "import mlops_core.project",
}
GOAL = 1.3


def sample(statement: str) -> float:
    code = f"import time; t = time.perf_counter(); {statement}; print(time.perf_counter() - t)"
    return float(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=15)
    runs = parser.parse_args().runs
    times: dict[str, list[float]] = {name: [] for name in CASES}
    for _ in range(runs):
        for name, statement in CASES.items():
            times[name].append(sample(statement))
    baseline = statistics.median(times["boto3"])
    for name, values in times.items():
        median = statistics.median(values)
        print(f"{name:<20} median {median * 1000:7.1f} ms   ratio vs boto3 {median / baseline:5.2f}")
    for name in ("mlops_core (full)", "mlops_core.project"):
        ratio = statistics.median(times[name]) / baseline
        print(f"goal: {name} <= {GOAL}x boto3: {'met' if ratio <= GOAL else 'NOT met'} ({ratio:.2f})")


if __name__ == "__main__":
    main()
