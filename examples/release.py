#!/usr/bin/env python3
"""One whole release with the library: preprocess -> train -> evaluate -> gate -> register -> deploy.

Needs MODEL_NAME, BUCKET_NAME, ROLE_ARN and IMAGE_URI (variables or flags; EXECUTION_ID resumes a release:
every step attaches to or reuses its job); the dataset is every CSV under s3://BUCKET/MODEL/data/current/.
    python examples/release.py --help
"""

import argparse

from mlops_core.aws import Clients
from mlops_core.cli import run
from mlops_core.config import add_config_arguments, config_from_args
from mlops_core.errors import QualityGateFailed
from mlops_core.gate import evaluate_gate
from mlops_core.project.release import Release, release_images, resolve_execution_id
from mlops_core.sagemaker.endpoints import DataCapture, deploy_model
from mlops_core.sagemaker.jobs import run_job
from mlops_core.sagemaker.registry import APPROVED, REJECTED, ensure_model_package_group, register_version

SETTINGS = ("model_name", "bucket_name", "role_arn", "image_uri", "execution_id", "epochs", "batch_size",
            "threshold", "model_package_group", "endpoint_name", "instance_type", "aws_region")


def main(argv: list[str] | None = None, *, clients: Clients | None = None) -> int:
    """The release; ``clients`` (e.g. the test kit's ``aws_clients``) replaces the clients built from the environment."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_config_arguments(parser, SETTINGS)
    config = config_from_args(parser.parse_args(argv), ["model_name", "bucket_name", "role_arn", "image_uri",
                                                        "aws_region"])
    clients = clients or Clients(region=config.aws_region)
    execution_id = resolve_execution_id(config.execution_id, generate=True, clients=clients)
    release = Release(config.bucket_name, config.model_name, execution_id)
    images, role = release_images(config.image_uri, execution_id), config.role_arn
    image = images.training

    run_job(release.preprocess_spec(image, role), clients=clients)
    hyperparameters = {"epochs": config.epochs, "batch_size": config.batch_size}
    run_job(release.train_spec(image, role, hyperparameters=hyperparameters), clients=clients)
    model_data = release.trained_model(clients=clients)
    run_job(release.evaluate_spec(image, role, model_data), clients=clients, log_lines=20)

    group = config.model_package_group or config.model_name
    ensure_model_package_group(group, clients=clients)
    gate = evaluate_gate(release.evaluation, threshold=config.threshold, compare_to_latest_approved=True,
                         model_package_group=group, clients=clients)
    print(f"release {execution_id}: {gate.summary}")
    register_version(group, images.inference, model_data, execution_id=execution_id, evaluation_uri=release.evaluation,
                     approval=APPROVED if gate.passed else REJECTED, clients=clients)
    if not gate.passed:
        raise QualityGateFailed(f"release {execution_id} is not deployed: {gate.summary}")

    deployed = deploy_model(config.endpoint_name or config.model_name, images.inference, model_data, role,
                            instance_type=config.instance_type, instance_count=2,
                            data_capture=DataCapture(release.data_capture), clients=clients)
    print(deployed.endpoint)
    return 0


if __name__ == "__main__":
    run(main)
