import time
from dataclasses import replace

import boto3
import pytest
from botocore.stub import Stubber

from mlops_core.aws import Clients
from mlops_core.ensure import Action
from mlops_core.errors import AwsResourceError, JobFailed
from mlops_core.project.release import Release
from mlops_core.sagemaker.jobs import (
    DEFINITION_TAG,
    PROCESSING,
    TRAINING,
    ProcessingInput,
    ProcessingJobSpec,
    ProcessingOutput,
    TrainingJobSpec,
    VpcConfig,
    attempt_name,
    creation_request,
    definition_of,
    run_job,
    start_job,
    wait_job,
)
from mlops_core.testing import VirtualClock
from tests.fakes import IMAGE_URI, NOW, ROLE_ARN, training_job

JOB = "abalone-Train-e1"
RELEASE = Release("abalone-bucket", "abalone", "e1")
NOT_FOUND = ("ValidationException", "Requested resource not found.")


def train_spec(**kwargs):
    return RELEASE.train_spec(IMAGE_URI, ROLE_ARN, hyperparameters={"epochs": 5, "batch_size": 32}, **kwargs)


def describe(stubber, name, status, secondary="Training", reason=None):
    stubber.add_response("describe_training_job", training_job(name, status, secondary, reason),
                         {"TrainingJobName": name})


def definition_tag(stubber, name, spec=None):
    """ListTags of job ``name``: its definition hash is ``spec``'s (the step's own by default)."""
    tags = [{"Key": DEFINITION_TAG, "Value": definition_of(spec or train_spec())}]
    stubber.add_response("list_tags", {"Tags": tags},
                         {"ResourceArn": f"arn:aws:sagemaker:eu-west-1:123456789012:training-job/{name.lower()}"})


def not_found(stubber, name):
    stubber.add_client_error("describe_training_job", *NOT_FOUND, expected_params={"TrainingJobName": name})


# moto: first call creates, second call attaches without a mutating call

@pytest.mark.parametrize("make_spec, create_call", [
    (lambda: RELEASE.preprocess_spec(IMAGE_URI, ROLE_ARN), "CreateProcessingJob"),
    (train_spec, "CreateTrainingJob"),
    (lambda: RELEASE.evaluate_spec(IMAGE_URI, ROLE_ARN, "s3://abalone-bucket/abalone/e1/model/x/output/model.tar.gz"),
     "CreateProcessingJob"),
], ids=["preprocess", "train", "evaluate"])
def test_start_creates_then_attaches_without_mutating(aws, recorder, make_spec, create_call):
    first = start_job(make_spec(), clients=aws)
    assert first.action is Action.CREATED and first.arn
    assert [op for _, op in recorder.mutating] == [create_call]
    recorder.clear()
    second = start_job(make_spec(), clients=aws)
    assert (second.action, second.name, second.details["status"]) == (Action.UNCHANGED, first.name, "Completed")
    assert recorder.mutating == []


def test_run_job_waits_and_returns_the_completed_description(aws):
    description = run_job(train_spec(), clients=aws)
    assert description["TrainingJobStatus"] == "Completed"
    assert RELEASE.trained_model(clients=aws) == "s3://abalone-bucket/abalone/e1/model/abalone-Train-e1/output/model.tar.gz"


def test_processing_request_follows_the_container_contract():
    request = RELEASE.preprocess_spec(IMAGE_URI, ROLE_ARN).request()
    assert request["ProcessingJobName"] == "abalone-Preprocess-e1"
    assert request["AppSpecification"] == {"ImageUri": IMAGE_URI, "ContainerArguments": ["preprocess"]}
    assert request["ProcessingInputs"][0]["S3Input"]["S3Uri"] == "s3://abalone-bucket/abalone/data/current/"
    assert request["ProcessingInputs"][0]["S3Input"]["LocalPath"] == "/opt/ml/processing/input/data"
    outputs = {o["OutputName"]: o["S3Output"] for o in request["ProcessingOutputConfig"]["Outputs"]}
    assert outputs["training"] == {"S3Uri": "s3://abalone-bucket/abalone/e1/preprocess/training/",
                                   "LocalPath": "/opt/ml/processing/output/training", "S3UploadMode": "EndOfJob"}
    assert set(outputs) == {"training", "testing", "report"}


def test_training_request_stringifies_hyperparameters_and_writes_under_model():
    request = train_spec().request()
    assert request["HyperParameters"] == {"epochs": "5", "batch_size": "32"}
    assert request["OutputDataConfig"] == {"S3OutputPath": "s3://abalone-bucket/abalone/e1/model"}
    assert request["InputDataConfig"][0]["ChannelName"] == "training"
    assert "ContainerArguments" not in request["AlgorithmSpecification"]  # SageMaker passes `train` itself


def test_full_spec_with_vpc_kms_isolation_environment_is_accepted_by_the_api(aws):
    vpc = VpcConfig(("subnet-1",), ("sg-1",))
    common = dict(image_uri=IMAGE_URI, role_arn=ROLE_ARN, vpc=vpc, volume_kms_key="k1", output_kms_key="k2",
                  network_isolation=True, environment={"SEED": 1}, tags={"team": "ml"}, entrypoint=("python3",),
                  arguments=("app.py", "x"), instance_count=2, max_runtime_s=600)
    processing = ProcessingJobSpec(name="p1", inputs=(ProcessingInput("in", "s3://b/in/", "/opt/ml/processing/in"),),
                                   outputs=(ProcessingOutput("out", "s3://b/out/", "/opt/ml/processing/out"),), **common)
    training = TrainingJobSpec(name="t1", output_s3_uri="s3://b/model", **common)
    request = processing.request()
    assert request["NetworkConfig"] == {"EnableNetworkIsolation": True,
                                        "VpcConfig": {"Subnets": ["subnet-1"], "SecurityGroupIds": ["sg-1"]}}
    assert request["ProcessingOutputConfig"]["KmsKeyId"] == "k2"
    assert request["ProcessingResources"]["ClusterConfig"]["VolumeKmsKeyId"] == "k1"
    assert request["Environment"] == {"SEED": "1"} and request["Tags"] == [{"Key": "team", "Value": "ml"}]
    assert training.request()["AlgorithmSpecification"]["ContainerEntrypoint"] == ["python3"]
    assert training.request()["VpcConfig"]["Subnets"] == ["subnet-1"]
    for spec in (processing, training):  # botocore validates every parameter against the API model
        assert start_job(spec, clients=aws).action is Action.CREATED


# Stubber: status sequences moto cannot produce

def test_rerun_attaches_to_in_progress_job_and_waits(stubbed):
    clients, stubber = stubbed
    describe(stubber, JOB, "InProgress")  # start: exists, running -> no create call is queued
    definition_tag(stubber, JOB)
    describe(stubber, JOB, "InProgress")
    describe(stubber, JOB, "Completed", "Completed")
    clock = VirtualClock()
    description = run_job(train_spec(), clients=clients, clock=clock)
    assert description["TrainingJobStatus"] == "Completed" and len(clock.sleeps) == 1


def test_in_progress_then_failed_raises_with_reason_and_logs(stubbed):
    clients, stubber = stubbed
    describe(stubber, JOB, "InProgress")
    describe(stubber, JOB, "Failed", "Failed", reason="AlgorithmError: ValueError: could not convert 'M'")
    with pytest.raises(JobFailed) as info:
        wait_job(TRAINING, JOB, clients=clients, clock=VirtualClock())
    message = str(info.value)
    assert "AlgorithmError: ValueError" in message and info.value.status == "Failed"
    assert "/aws/sagemaker/TrainingJobs" in message and f"{JOB}/" in message


def test_stopped_job_is_not_success(stubbed):
    clients, stubber = stubbed
    describe(stubber, JOB, "InProgress", "Stopping")
    describe(stubber, JOB, "Stopped", "Stopped")
    with pytest.raises(JobFailed, match="ended Stopped"):
        wait_job(TRAINING, JOB, clients=clients, clock=VirtualClock())


def test_throttling_during_wait_is_retried(stubbed):
    clients, stubber = stubbed
    describe(stubber, JOB, "InProgress")
    stubber.add_client_error("describe_training_job", "ThrottlingException", "Rate exceeded", 400)
    stubber.add_client_error("describe_training_job", "InternalFailure", "oops", 500)
    describe(stubber, JOB, "Completed", "Completed")
    assert wait_job(TRAINING, JOB, clients=clients, clock=VirtualClock())["TrainingJobStatus"] == "Completed"


def test_existing_failed_job_raises_and_names_the_fresh_attempt(stubbed):
    clients, stubber = stubbed
    describe(stubber, JOB, "Failed", "Failed", reason="OOM")
    not_found(stubber, f"{JOB}-r2")
    with pytest.raises(JobFailed) as info:
        start_job(train_spec(), clients=clients)
    assert "OOM" in str(info.value) and "--retry-failed" in str(info.value) and f"{JOB}-r2" in str(info.value)


def test_retry_failed_starts_a_fresh_attempt_under_a_derived_name(stubbed):
    clients, stubber = stubbed
    describe(stubber, JOB, "Stopped", "Stopped")
    not_found(stubber, f"{JOB}-r2")
    stubber.add_response("create_training_job", {"TrainingJobArn": "arn:aws:sagemaker:eu-west-1:1:training-job/x"},
                         creation_request(train_spec(), f"{JOB}-r2"))
    started = start_job(train_spec(), clients=clients, retry_failed=True)
    assert (started.action, started.name) == (Action.CREATED, f"{JOB}-r2")


def test_rerun_finds_the_newest_attempt_without_the_retry_flag(stubbed):
    clients, stubber = stubbed
    describe(stubber, JOB, "Failed", "Failed", reason="OOM")
    describe(stubber, f"{JOB}-r2", "InProgress")
    definition_tag(stubber, f"{JOB}-r2")
    started = start_job(train_spec(), clients=clients)
    assert (started.action, started.name, started.details["status"]) == (Action.UNCHANGED, f"{JOB}-r2", "InProgress")


def test_create_race_already_exists_attaches(stubbed):
    clients, stubber = stubbed
    not_found(stubber, JOB)
    stubber.add_client_error("create_training_job", "ValidationException",
                             "Training job names must be unique within an AWS account and region, and a training "
                             "job with this name already exists")
    describe(stubber, JOB, "InProgress")
    definition_tag(stubber, JOB)
    started = start_job(train_spec(), clients=clients)
    assert (started.action, started.details["status"]) == (Action.UNCHANGED, "InProgress")


def test_other_create_errors_propagate(stubbed):
    clients, stubber = stubbed
    not_found(stubber, JOB)
    stubber.add_client_error("create_training_job", "ResourceLimitExceeded", "no ml.m5.large quota left")
    with pytest.raises(Exception, match="quota"):
        start_job(train_spec(), clients=clients)


def test_failure_carries_the_last_log_lines_from_cloudwatch(aws):
    logs = aws.logs
    group, stream = "/aws/sagemaker/TrainingJobs", f"{JOB}/algo-1-1700000000"
    logs.create_log_group(logGroupName=group)
    logs.create_log_stream(logGroupName=group, logStreamName=stream)
    now_ms = int(time.time() * 1000)
    logs.put_log_events(logGroupName=group, logStreamName=stream, logEvents=[
        {"timestamp": now_ms + i, "message": f"line {i}"} for i in range(5)])
    client = boto3.client("sagemaker", region_name="us-east-1")
    with Stubber(client) as stubber:
        describe(stubber, JOB, "Failed", "Failed", reason="AlgorithmError: boom")
        with pytest.raises(JobFailed) as info:
            wait_job(TRAINING, JOB, clients=Clients(aws.session, sagemaker=client), log_lines=2, clock=VirtualClock())
    message = str(info.value)
    assert "line 3" in message and "line 4" in message and "line 2" not in message
    assert "AlgorithmError: boom" in message and info.value.__cause__ is not None


def test_failure_without_logs_still_raises_the_job_error(stubbed):
    clients, stubber = stubbed
    describe(stubber, JOB, "Failed", "Failed", reason="boom")
    logs = boto3.client("logs", region_name="eu-west-1", aws_access_key_id="x", aws_secret_access_key="x")
    with Stubber(logs) as log_stub:
        log_stub.add_client_error("describe_log_streams", "ResourceNotFoundException", "no group")
        with pytest.raises(JobFailed, match="boom"):
            wait_job(TRAINING, JOB, clients=Clients(region="eu-west-1", sagemaker=clients.sagemaker, logs=logs),
                     log_lines=10, clock=VirtualClock())


def test_processing_failure_reports_exit_message(stubbed):
    clients, stubber = stubbed
    name = "abalone-Preprocess-e1"
    stubber.add_response("describe_processing_job", {
        "ProcessingJobName": name, "ProcessingJobArn": f"arn:aws:sagemaker:eu-west-1:1:processing-job/{name}",
        "ProcessingJobStatus": "Failed", "ExitMessage": "ValueError: no rows in data/current",
        "ProcessingResources": {"ClusterConfig": {"InstanceCount": 1, "InstanceType": "ml.m5.large",
                                                  "VolumeSizeInGB": 30}},
        "AppSpecification": {"ImageUri": IMAGE_URI}, "CreationTime": NOW}, {"ProcessingJobName": name})
    with pytest.raises(JobFailed, match="no rows in data/current") as info:
        wait_job(PROCESSING, name, clients=clients, clock=VirtualClock())
    assert "/aws/sagemaker/ProcessingJobs" in str(info.value)


def test_attempt_names_stay_valid():
    assert attempt_name(JOB, 1) == JOB and attempt_name(JOB, 2) == f"{JOB}-r2"
    long = "a" * 63
    assert len(attempt_name(long, 2)) <= 63 and attempt_name(long, 2) != attempt_name(long, 3)


def test_a_rerun_refuses_to_attach_to_a_job_of_another_definition(aws):
    start_job(train_spec(), clients=aws)
    changed = RELEASE.train_spec(IMAGE_URI.replace(":v1", ":v2"), ROLE_ARN,
                                 hyperparameters={"epochs": 5, "batch_size": 32})
    with pytest.raises(AwsResourceError, match=f"{JOB}.*another definition.*new EXECUTION_ID"):
        start_job(changed, clients=aws)
    with pytest.raises(AwsResourceError, match="another definition"):
        start_job(RELEASE.train_spec(IMAGE_URI, ROLE_ARN, hyperparameters={"epochs": 6, "batch_size": 32}),
                  clients=aws)
    assert start_job(train_spec(), clients=aws).action is Action.UNCHANGED  # the same definition still attaches


def test_the_definition_hash_ignores_the_attempt_name_and_tags():
    spec = train_spec()
    assert definition_of(spec) == definition_of(replace(spec, name=f"{JOB}-r2", tags={"team": "ml"}))
    assert definition_of(spec) != definition_of(replace(spec, instance_type="ml.m5.xlarge"))

