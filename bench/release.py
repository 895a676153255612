"""Wall time of the full local release, split by stage, and the orchestration overhead per stage.

Overhead = time from a job's end (as the local runtime recorded it) to the end of the stage that waited
for it, measured against the job's own run time in the same run. Goals: overhead <= max(2 s, 10 % of the
job's run time) per stage; the whole release (bootstrap to predictions) under 3 minutes on 2 cores.

    python bench/release.py [--data PATH] [--epochs 100]
"""

from __future__ import annotations

import argparse
import sys
import tempfile

from mlops_core.logs import configure_logging
from workflows.local_release import parser as demo_parser
from workflows.local_release import run_release

RELEASE_GOAL_S = 180.0


def main() -> int:
    cli = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    cli.add_argument("--data")
    cli.add_argument("--epochs", default="100")
    options = cli.parse_args()
    configure_logging(level="WARNING")
    with tempfile.TemporaryDirectory() as out:
        argv = ["--out", out, "--epochs", options.epochs] + (["--data", options.data] if options.data else [])
        summary = run_release(demo_parser().parse_args(argv), echo=lambda _line: None)
    print(f"{'stage':<11}{'wall s':>8}{'job s':>8}{'overhead s':>12}{'allowed s':>11}{'ratio':>7}")
    met = summary["ok"]
    for stage in summary["stages"]:
        job, overhead = stage["job_seconds"], stage["overhead_seconds"]
        if job is None:
            print(f"{stage['stage']:<11}{stage['seconds']:>8.2f}{'-':>8}{'-':>12}{'-':>11}{'-':>7}")
            continue
        allowed = max(2.0, 0.1 * job)
        met = met and overhead <= allowed
        print(f"{stage['stage']:<11}{stage['seconds']:>8.2f}{job:>8.2f}{overhead:>12.2f}{allowed:>11.2f}"
              f"{overhead / allowed:>7.2f}")
    total = summary.get("total_seconds", float("nan"))
    met = met and total <= RELEASE_GOAL_S
    release = summary["releases"][0] if summary["releases"] else {}
    print(f"whole release {total:.1f} s vs goal {RELEASE_GOAL_S:.0f} s: ratio {total / RELEASE_GOAL_S:.2f}; "
          f"RMSE {release.get('rmse')}; outcome {release.get('outcome')}")
    print(f"goals {'met' if met else 'NOT met'}")
    return 0 if summary["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
