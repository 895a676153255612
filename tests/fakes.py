"""Test doubles shared by the test modules: full SageMaker descriptions for Stubber (the virtual clock and the
call log are the test kit's: mlops_core.testing)."""

from __future__ import annotations

import datetime as dt

from botocore.exceptions import ClientError

NOW = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
ROLE_ARN = "arn:aws:iam::123456789012:role/abalone-sagemaker"
IMAGE_URI = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/abalone:v1"



def client_error(code: str, message: str = "", status: int = 400, operation: str = "Describe") -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": message},
                        "ResponseMetadata": {"HTTPStatusCode": status}}, operation)


def training_job(name: str, status: str, secondary: str = "Training", reason: str | None = None) -> dict:
    """A complete DescribeTrainingJob response (Stubber validates response shapes)."""
    description = {
        "TrainingJobName": name,
        "TrainingJobArn": f"arn:aws:sagemaker:eu-west-1:123456789012:training-job/{name.lower()}",
        "ModelArtifacts": {"S3ModelArtifacts": f"s3://bucket/abalone/{name}/output/model.tar.gz"},
        "TrainingJobStatus": status,
        "SecondaryStatus": secondary,
        "AlgorithmSpecification": {"TrainingImage": IMAGE_URI, "TrainingInputMode": "File"},
        "RoleArn": ROLE_ARN,
        "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 30},
        "StoppingCondition": {"MaxRuntimeInSeconds": 3600},
        "CreationTime": NOW,
    }
    if reason:
        description["FailureReason"] = reason
    return description


def evaluation_document(rmse: float, *, linear: float = 2.4, mean: float = 3.3, tolerance: float = 0.05) -> dict:
    """An evaluation.json as the evaluate job writes it: model quality, the gate's baselines and successor limit."""
    return {"regression_metrics": {name: {"value": value, "standard_deviation": 0.1} for name, value in
                                   {"rmse": rmse, "mse": rmse ** 2, "mae": rmse * 0.8, "r2": 0.5}.items()},
            "baselines": {"linear": {"rmse": linear}, "training_mean": {"rmse": mean}},
            "successor_limit": {"rmse": rmse + tolerance, "tolerance": tolerance}}


def rerun_changes_nothing(run, recorder) -> list:
    """``run()`` twice: the second makes no mutating call and leaves every resource unchanged; its results."""
    from mlops_core.ensure import Action

    run()
    recorder.clear()
    results = run()
    assert recorder.mutating == []
    assert {r.action for r in results} == {Action.UNCHANGED}
    return results
