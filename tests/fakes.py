"""Test doubles shared by the test modules: a fake clock and full SageMaker descriptions for Stubber."""

from __future__ import annotations

import datetime as dt

from botocore.exceptions import ClientError

NOW = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
ROLE_ARN = "arn:aws:iam::123456789012:role/abalone-sagemaker"
IMAGE_URI = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/abalone:latest"


class FakeClock:
    """monotonic() and sleep() on a virtual timeline; records every sleep."""

    def __init__(self, start: float = 1000.0):
        self.now = start
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        assert seconds >= 0
        self.sleeps.append(seconds)
        self.now += seconds


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


READ_PREFIXES = ("Describe", "List", "Get", "BatchGet", "Head", "Search", "Query", "Scan")


class CallRecorder:
    """Records every API call made by clients built from ``session`` (register before building them)."""

    def __init__(self, session):
        self.calls: list[tuple[str, str]] = []
        session.events.register("before-call", self._record)

    def _record(self, model, **_kwargs):
        self.calls.append((model.service_model.service_name, model.name))

    @property
    def mutating(self) -> list[tuple[str, str]]:
        """Calls that may change something: everything but Describe/List/Get/... reads."""
        return [(s, op) for s, op in self.calls if not op.startswith(READ_PREFIXES)]

    def clear(self) -> None:
        self.calls.clear()
