"""A user's tests of their release driver (examples/release.py), with mlops_core's test kit only.

    pip install "mlops-core-aws[testing]"
    pytest examples/test_my_release.py

moto plays the AWS account; the kit's fixtures add what moto cannot: job and endpoint statuses scripted
per name (``job_statuses``), waits on a virtual clock (``fast_polling``), endpoint answers with data capture
(``endpoint_responder``) and the record of every mutating call (``mutating_calls``).
"""

from __future__ import annotations

import json

import pytest
from release import main  # examples/release.py, beside this file

from mlops_core.cli import run
from mlops_core.sagemaker.capture import read_capture

BUCKET = "my-ml-bucket"
ARGS = ["--model-name", "abalone", "--bucket-name", BUCKET, "--aws-region", "us-east-1",
        "--role-arn", "arn:aws:iam::123456789012:role/abalone-sagemaker",
        "--image-uri", "123456789012.dkr.ecr.us-east-1.amazonaws.com/abalone"]


@pytest.fixture
def account(aws_clients, fast_polling):
    """The bucket, and evaluation reports where the evaluate jobs would write them (the kit runs no container)."""
    aws_clients.s3.create_bucket(Bucket=BUCKET)

    def evaluated(execution_id: str, rmse: float) -> None:  # as model_container/evaluate.py writes it
        report = {"regression_metrics": {"rmse": {"value": rmse, "standard_deviation": 0.1}},
                  "baselines": {"linear": {"rmse": 2.4}, "training_mean": {"rmse": 3.3}},
                  "successor_limit": {"rmse": rmse + 0.05, "tolerance": 0.05}}
        aws_clients.s3.put_object(Bucket=BUCKET, Key=f"abalone/{execution_id}/evaluation/evaluation.json",
                                  Body=json.dumps(report).encode())
    return evaluated


def release(execution_id: str, aws_clients) -> int:
    """The driver as its command line runs it: the exit code (0 done, 1 failed, 2 configuration)."""
    with pytest.raises(SystemExit) as exit_code:
        run(lambda: main([*ARGS, "--execution-id", execution_id], clients=aws_clients))
    return exit_code.value.code


def test_a_training_job_that_fails_stops_the_release_naming_the_job_and_the_reason(
        aws_clients, account, job_statuses, capsys):
    job_statuses.training("abalone-Train-", ["InProgress", "InProgress", "Failed"],
                          failure_reason="AlgorithmError: loss is NaN")
    assert release("e1", aws_clients) == 1
    error = capsys.readouterr().err
    assert "abalone-Train-e1" in error and "AlgorithmError: loss is NaN" in error


def test_the_happy_path_deploys_with_data_capture_and_a_rerun_changes_nothing(
        aws_clients, account, endpoint_responder, mutating_calls):
    account("e1", 2.0)
    assert release("e1", aws_clients) == 0
    assert aws_clients.sagemaker.describe_endpoint(EndpointName="abalone")["EndpointStatus"] == "InService"

    endpoint_responder("abalone", lambda body, content_type: json.dumps({"predictions": [{"rings": 9.5}]}))
    answer = aws_clients.sagemaker_runtime.invoke_endpoint(
        EndpointName="abalone", ContentType="text/csv", Accept="application/json",
        Body="M,0.455,0.365,0.095,0.514,0.2245,0.101,0.15", InferenceId="request-1")
    assert json.loads(answer["Body"].read()) == {"predictions": [{"rings": 9.5}]}
    [record] = read_capture(f"s3://{BUCKET}/abalone/data-capture", "abalone", clients=aws_clients)
    assert record.input_data == "M,0.455,0.365,0.095,0.514,0.2245,0.101,0.15" and record.inference_id == "request-1"

    mutating_calls.clear()
    assert release("e1", aws_clients) == 0  # the same release again: every job is attached to, nothing created
    assert mutating_calls.names() == []


def test_an_endpoint_update_that_sagemaker_rolls_back_is_reported(aws_clients, account, job_statuses, capsys):
    account("e1", 2.0)
    assert release("e1", aws_clients) == 0
    account("e2", 1.9)  # a better model: it passes the gate and is deployed over the first
    job_statuses.endpoint("abalone", ["Updating", "Updating", "InService"], rolled_back=True)
    assert release("e2", aws_clients) == 1
    assert "abalone ended rolled back" in capsys.readouterr().err
    endpoint = aws_clients.sagemaker.describe_endpoint(EndpointName="abalone")
    assert endpoint["EndpointStatus"] == "InService" and "-config-" in endpoint["EndpointConfigName"]
