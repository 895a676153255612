#!/usr/bin/env python3
"""Run one build step of a release as a SageMaker job and wait for it: preprocess | train | evaluate.

Settings come from environment variables (flags override). The execution id is EXECUTION_ID, else the
running CodePipeline execution, else (preprocess only) a new one, printed for the next steps. Running a
step again attaches to its job instead of starting a second one. Exit 0 ok, 1 failed, 2 configuration.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from mlops_core.aws import Clients
from mlops_core.cli import run
from mlops_core.config import add_config_arguments, config_from_args
from mlops_core.errors import AwsResourceError, QualityGateFailed
from mlops_core.gate import evaluate_gate
from mlops_core.project.release import (
    Compute,
    Release,
    execution_id_settings,
    image_tag,
    release_images,
    resolve_execution_id,
)
from mlops_core.s3 import list_keys
from mlops_core.sagemaker.jobs import run_job

SETTINGS = ("model_name", "bucket_name", "role_arn", "image_uri", "execution_id", "threshold", "gate_tolerance", "epochs",
            "batch_size", "instance_type", "model_package_group", "aws_region")
REQUIRED = ("model_name", "bucket_name", "role_arn", "image_uri", "aws_region")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("step", choices=("preprocess", "train", "evaluate"), help="the build step to run")
    add_config_arguments(parser, SETTINGS)
    parser.add_argument("--instance-count", type=int, default=1, help="instances of the job (default 1)")
    parser.add_argument("--volume-size-gb", type=int, default=30, help="storage per instance (default 30)")
    parser.add_argument("--max-runtime", type=int, default=3600, help="stop the job after this many seconds")
    parser.add_argument("--retry-failed", action="store_true", default=None,
                        help="when this step's job already failed or stopped, start a fresh attempt (-r2, ...) "
                             "(env RETRY_FAILED; the pipeline's buildspecs set it, so a Retry in CodePipeline "
                             "starts a fresh attempt)")
    parser.add_argument("--log-lines", type=int, default=30, help="CloudWatch log lines to show on failure")
    parser.add_argument("--summary-file", type=Path, help="evaluate: write the one-line gate summary here")
    parser.add_argument("--no-compare-to-latest-approved", dest="compare_to_latest_approved", action="store_false",
                        default=None, help="evaluate: the gate ignores the latest approved version (env "
                        "COMPARE_TO_LATEST_APPROVED=false; by default a release may not be worse than its successor limit)")
    parser.add_argument("--fail-on-gate", action="store_true", help="evaluate: exit 1 when the gate fails")
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    config = config_from_args(args, REQUIRED + execution_id_settings(generate=args.step == "preprocess"))
    image_tag(config.image_uri)  # a mutable :latest is refused before any call
    clients = Clients(region=config.aws_region)
    execution_id = resolve_execution_id(config.execution_id, generate=args.step == "preprocess", clients=clients)
    release = Release(config.bucket_name, config.model_name, execution_id)
    image = release_images(config.image_uri, execution_id).training
    compute = Compute(config.instance_type, args.instance_count, args.volume_size_gb, args.max_runtime)
    if args.step == "preprocess":
        if next(list_keys(release.current_data, clients=clients), None) is None:
            raise AwsResourceError(release.current_data, "read the dataset", "no objects under it",
                                   f"upload the training data as CSV files to {release.current_data}")
        spec = release.preprocess_spec(image, config.role_arn, compute)
    elif args.step == "train":
        spec = release.train_spec(image, config.role_arn, compute,
                                  hyperparameters={"epochs": config.epochs, "batch_size": config.batch_size})
    else:
        spec = release.evaluate_spec(image, config.role_arn, release.trained_model(clients=clients),
                                     compute, tolerance=config.gate_tolerance)
    job = run_job(spec, clients=clients, retry_failed=config.retry_failed, log_lines=args.log_lines)
    name = job.get("ProcessingJobName") or job.get("TrainingJobName")
    print(f"{args.step}: {name} completed (EXECUTION_ID={execution_id})")
    if args.step == "evaluate":
        result = evaluate_gate(release.evaluation, threshold=config.threshold,
                               compare_to_latest_approved=config.compare_to_latest_approved,
                               model_package_group=config.model_package_group or config.model_name, clients=clients)
        print(result.summary)
        if args.summary_file:
            args.summary_file.write_text(result.summary + "\n")
        if args.fail_on_gate and not result.passed:
            raise QualityGateFailed(f"release {execution_id}: {result.summary}")
    return 0


if __name__ == "__main__":
    run(main)
