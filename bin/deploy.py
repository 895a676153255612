#!/usr/bin/env python3
"""Deploy a release: gate its evaluation, register it in the model registry (Approved when it passes,
Rejected when not), then deploy the latest approved version to the endpoint with data capture of 100 %
of inputs and outputs. With --latest-approved, skip the release and (re)deploy the latest approved one.

Running it again changes nothing. Exit 0 ok, 1 gate failed or deployment failed/rolled back, 2 configuration.
"""

from __future__ import annotations

import argparse

from mlops_core.autoscaling import ensure_endpoint_autoscaling
from mlops_core.aws import Clients
from mlops_core.cli import run
from mlops_core.config import add_config_arguments, config_from_args
from mlops_core.errors import QualityGateFailed
from mlops_core.gate import evaluate_gate
from mlops_core.project.release import (
    Release,
    data_capture_uri,
    execution_id_settings,
    image_tag,
    release_images,
    resolve_execution_id,
)
from mlops_core.sagemaker.endpoints import DataCapture, deploy_model
from mlops_core.sagemaker.registry import (
    APPROVED,
    REJECTED,
    ensure_model_package_group,
    latest_approved_version,
    register_version,
    serving_container,
)

SETTINGS = ("model_name", "bucket_name", "role_arn", "image_uri", "execution_id", "threshold",
            "model_package_group", "endpoint_name", "instance_type", "aws_region")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_config_arguments(parser, SETTINGS)
    parser.add_argument("--instance-count", type=int, default=2, help="endpoint instances (default 2)")
    parser.add_argument("--latest-approved", action="store_true",
                        help="deploy the latest approved version without registering this release")
    parser.add_argument("--no-compare-to-latest-approved", dest="compare_to_latest_approved", action="store_false",
                        default=None, help="approval: the gate ignores the latest approved version (env "
                        "COMPARE_TO_LATEST_APPROVED=false; by default a release may not be worse than its successor limit)")
    parser.add_argument("--capture-percent", type=int, default=100, help="data capture sampling (default 100)")
    parser.add_argument("--autoscaling", action="store_true",
                        help="scale between --instance-count and --max-instances on invocations per instance")
    parser.add_argument("--max-instances", type=int, default=10, help="--autoscaling: at most this many instances "
                                                                      "(default 10)")
    parser.add_argument("--target-invocations", type=float, default=750.0,
                        help="--autoscaling: invocations per instance per minute to keep (default 750)")
    parser.add_argument("--keep-old", action="store_true", help="keep superseded endpoint configs and models")
    return parser.parse_args()


def register_release(config, args, group: str, clients: Clients) -> None:
    """Gate this release and register it; QualityGateFailed when it does not pass."""
    release = Release(config.bucket_name, config.model_name, resolve_execution_id(config.execution_id, clients=clients))
    gate = evaluate_gate(release.evaluation, threshold=config.threshold,
                         compare_to_latest_approved=config.compare_to_latest_approved,
                         model_package_group=group, clients=clients)
    print(f"release {release.execution_id}: {gate.summary}")
    inference_image = release_images(config.image_uri, release.execution_id).inference
    version = register_version(group, inference_image, release.trained_model(clients=clients),
                               execution_id=release.execution_id, evaluation_uri=release.evaluation,
                               approval=APPROVED if gate.passed else REJECTED,
                               instance_types=[config.instance_type], clients=clients)
    print(f"model package {version.name}: {version.action.value} ({version.details.get('approval')})")
    if not gate.passed:
        raise QualityGateFailed(f"release {release.execution_id} is not deployed: {gate.summary}; "
                                f"registered as {REJECTED} in {group}")


def main() -> int:
    args = parse_args()
    required = ["model_name", "bucket_name", "role_arn", "aws_region"] + (
        [] if args.latest_approved else ["image_uri", *execution_id_settings(generate=False)])
    config = config_from_args(args, required)
    if config.image_uri:
        image_tag(config.image_uri)  # a mutable :latest is refused before any call
    clients = Clients(region=config.aws_region)
    group = config.model_package_group or config.model_name
    endpoint = config.endpoint_name or config.model_name
    ensure_model_package_group(group, description=f"{config.model_name} models", clients=clients)
    if not args.latest_approved:
        register_release(config, args, group, clients)
    version = latest_approved_version(group, clients=clients)
    if version is None:
        raise QualityGateFailed(f"model package group {group} has no approved version to deploy: "
                                "deploy a release that passes the quality gate first")
    image_uri, model_data_url = serving_container(version)
    capture = DataCapture(data_capture_uri(config.bucket_name, config.model_name), args.capture_percent)
    deployed = deploy_model(endpoint, image_uri, model_data_url, config.role_arn, instance_type=config.instance_type,
                            instance_count=args.instance_count, data_capture=capture, cleanup=not args.keep_old,
                            tags={"mlops:model": config.model_name}, clients=clients)
    for done in (deployed.model, deployed.config, deployed.endpoint, *deployed.cleaned):
        print(done)
    if args.autoscaling:
        for done in ensure_endpoint_autoscaling(endpoint, min_capacity=args.instance_count,
                                                max_capacity=args.max_instances,
                                                target_invocations=args.target_invocations, clients=clients):
            print(done)
    print(f"endpoint {endpoint} runs {version['ModelPackageArn']}")
    return 0


if __name__ == "__main__":
    run(main)
