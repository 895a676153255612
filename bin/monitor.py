#!/usr/bin/env python3
"""Model monitoring of the project's endpoint (SageMaker Model Monitor in plain boto3):

    monitor.py baseline --execution-id ID   data- and model-quality baselines of that release (waits for both)
    monitor.py schedule [--cron EXPR]       create or update both schedules on the endpoint (hourly by default)
    monitor.py status [--run-now]           latest executions and their violations; exit 1 when the newest has any
    monitor.py ground-truth --labels FILE   upload labels (CSV lines "inference_id,rings") as SageMaker's ground truth

--run-now runs both schedules at once and waits (the embedded AWS only: bin/local-aws or bin/demo; on AWS the
schedules run on their cron expression). Every command can be re-run: baselines attach to the release's jobs,
schedules change only what differs. Exit 0 ok, 1 violations or a failed job, 2 configuration.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from mlops_core.aws import Clients
from mlops_core.cli import run
from mlops_core.errors import ConfigError
from mlops_core.project import add_project_arguments, describe_results, project_from_args
from mlops_core.project import monitoring as plan
from mlops_core.project.bootstrap import project_config
from mlops_core.sagemaker import monitoring


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_project_arguments(parser, bootstrap=False)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    baseline = commands.add_parser("baseline", help="baseline data and model quality on a release's outputs")
    baseline.add_argument("--execution-id", default=os.environ.get("EXECUTION_ID"),
                          help="the release whose training rows and test predictions to baseline (env EXECUTION_ID)")
    baseline.add_argument("--retry-failed", action="store_true", help="start a fresh attempt of a failed baseline job")
    schedule = commands.add_parser("schedule", help="create or update the monitoring schedules")
    schedule.add_argument("--cron", help="schedule expression (default hourly: cron(0 * ? * * *))")
    status = commands.add_parser("status", help="latest executions and violations; exit 1 on violations")
    status.add_argument("--run-now", action="store_true", help="run both schedules now and wait (embedded AWS only)")
    status.add_argument("--count", type=int, default=3, help="executions to show per schedule (default 3)")
    truth = commands.add_parser("ground-truth", help="upload ground-truth labels keyed by inference id")
    truth.add_argument("--labels", type=Path, required=True, help="CSV file of lines 'inference_id,rings'")
    return parser.parse_args(argv)


def read_labels(path: Path) -> dict[str, str]:
    """inference id -> label from ``path``; ConfigError naming the line when one is malformed."""
    if not path.is_file():
        raise ConfigError(f"--labels {path}: no such file")
    labels = {}
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip() or line.startswith("inference_id"):
            continue
        inference_id, _, label = (part.strip() for part in line.partition(","))
        try:
            float(label)
        except ValueError:
            raise ConfigError(f"--labels {path} line {number}: expected 'inference_id,rings', got {line!r}") from None
        labels[inference_id] = label
    if not labels:
        raise ConfigError(f"--labels {path}: no labels")
    return labels


def show_status(project, args: argparse.Namespace, clients: Clients) -> int:
    schedules = [plan.schedule_name(project, kind) for kind in plan.SCHEDULE_SUFFIX]
    if args.run_now:
        endpoint_url = os.environ.get("AWS_ENDPOINT_URL")
        if not endpoint_url:
            raise ConfigError("--run-now needs the embedded AWS (AWS_ENDPOINT_URL from bin/local-aws); on AWS the "
                              "schedules run on their cron expression")
        from mlops_core.local.monitoring import run_schedules_now

        run_schedules_now(endpoint_url, schedules, clients=clients)
    newest_violates = False
    for name in schedules:
        executions = monitoring.latest_executions(name, count=args.count, clients=clients)
        print(f"{name}: {len(executions)} recent execution(s)")
        for index, execution in enumerate(executions):
            when = f"{execution.scheduled_time:%Y-%m-%d %H:%M}" if execution.scheduled_time else "?"
            print(f"  {when} {execution.status}" + (f" ({execution.failure_reason})" if execution.failure_reason
                                                    else "") + (f" report {execution.report_s3_uri}"
                                                                if execution.report_s3_uri else ""))
            for violation in execution.violations:
                print(f"    {violation.feature}: {violation.check}: {violation.description}")
            newest_violates |= index == 0 and execution.has_violations
    return 1 if newest_violates else 0


def main(argv: list[str] | None = None, *, clients: Clients | None = None) -> int:
    args = parse_args(argv)
    config = project_config(args)
    if args.command == "baseline" and not args.execution_id:
        raise ConfigError("baseline needs the release: --execution-id ID (or EXECUTION_ID)")
    labels = read_labels(args.labels) if args.command == "ground-truth" else None
    clients = clients if clients is not None else Clients(region=config.aws_region)
    project = project_from_args(args, config=config, clients=clients)
    if args.command == "baseline":
        for kind, uri in plan.start_baselines(project, args.execution_id, retry_failed=args.retry_failed,
                                              clients=clients).items():
            print(f"{kind} baseline of release {args.execution_id}: {uri}/")
        return 0
    if args.command == "schedule":
        for line in describe_results(plan.ensure_schedules(project, schedule_expression=args.cron, clients=clients)):
            print(line)
        return 0
    if args.command == "ground-truth":
        uri = monitoring.upload_ground_truth(plan.ground_truth_uri(project), labels, clients=clients)
        print(f"{len(labels)} ground-truth labels -> {uri}")
        return 0
    return show_status(project, args, clients)


if __name__ == "__main__":
    run(main)
