#!/usr/bin/env python3
"""Run one release as the Step Functions ML workflow: preprocess, train, evaluate, gate, register.

Creates or updates the state machine ``{model}-ml-workflow``, starts the execution named after the
release (EXECUTION_ID, else the running CodePipeline execution, else a new id) or attaches to it when it
exists, and waits; on failure it names the failed state and its cause. Usable as the pipeline's Build
stage instead of the separate Preprocess / Train / Evaluate actions.
Exit 0 ok, 1 failed, 2 configuration error.
"""

from __future__ import annotations

import argparse
import json
import os
from dataclasses import replace
from pathlib import Path

from mlops_core.aws import Clients
from mlops_core.cli import run
from mlops_core.config import add_config_arguments, config_from_args
from mlops_core.project.release import resolve_execution_id
from mlops_core.sagemaker.registry import ensure_model_package_group
from workflows.ml_workflow import definition, gate_result, run_release

SETTINGS = ("model_name", "bucket_name", "role_arn", "image_uri", "execution_id", "threshold", "gate_tolerance", "epochs",
            "batch_size", "instance_type", "model_package_group", "aws_region")
REQUIRED = ("model_name", "bucket_name", "role_arn", "image_uri", "aws_region")
ROLE_PLACEHOLDER = "arn:aws:iam::123456789012:role/SAGEMAKER-ROLE"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_config_arguments(parser, SETTINGS)
    parser.add_argument("--workflow-role-arn", default=os.environ.get("WORKFLOW_ROLE_ARN"),
                        help="role Step Functions assumes (env WORKFLOW_ROLE_ARN); needed to create the state "
                             "machine, an existing one keeps its role when omitted")
    parser.add_argument("--no-compare-to-latest-approved", dest="compare_to_latest_approved", action="store_false",
                        default=None, help="registration: the gate ignores the latest approved version (env "
                        "COMPARE_TO_LATEST_APPROVED=false; by default a release may not be worse than its successor limit)")
    parser.add_argument("--print-definition", action="store_true",
                        help="print the state machine definition (ASL JSON) and exit")
    parser.add_argument("--no-wait", action="store_true", help="start (or find) the execution and exit")
    parser.add_argument("--summary-file", type=Path, help="write the one-line gate summary here")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.print_definition:
        config = config_from_args(args)
        print(json.dumps(definition(config.role_arn or ROLE_PLACEHOLDER,
                                    compare_with_approved=config.compare_to_latest_approved), indent=2))
        return 0
    config = config_from_args(args, REQUIRED)
    clients = Clients(region=config.aws_region)
    config = replace(config, execution_id=resolve_execution_id(config.execution_id, generate=True, clients=clients))
    ensure_model_package_group(config.model_package_group or config.model_name, clients=clients)
    description = run_release(config, workflow_role_arn=args.workflow_role_arn, wait=not args.no_wait,
                              compare_with_approved=config.compare_to_latest_approved, clients=clients)
    if args.no_wait:
        print(f"execution {description['executionArn']} (EXECUTION_ID={config.execution_id})")
        return 0
    output = description["result"]
    summary = gate_result(output).summary
    print(f"release {config.execution_id}: registered {output['model_package']['arn']}")
    print(summary)
    if args.summary_file:
        args.summary_file.write_text(summary + "\n")
    return 0


if __name__ == "__main__":
    run(main)
