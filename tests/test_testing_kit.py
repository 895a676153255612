"""The test kit (mlops_core.testing) itself: scripted statuses, duplicate creates, endpoint updates, answers,
and failure messages that say what was scripted and what the code under test called."""

from __future__ import annotations

import textwrap

import pytest

from mlops_core.errors import DeploymentRolledBack, JobFailed, ResourceFailed
from mlops_core.project.release import Release
from mlops_core.sagemaker.endpoints import deploy_model
from mlops_core.sagemaker.jobs import PROCESSING, run_job, wait_job
from tests.fakes import IMAGE_URI, ROLE_ARN

pytest_plugins = ["pytester"]
RELEASE = Release("kit-bucket", "abalone", "e1")


def test_scripted_statuses_play_in_turn_and_the_last_repeats(aws_clients, job_statuses, fast_polling):
    job_statuses.processing("abalone-Preprocess-", ["InProgress", "InProgress", "Failed"], failure_reason="OOM")
    with pytest.raises(JobFailed, match="abalone-Preprocess-e1 ended Failed; reason: OOM"):
        run_job(RELEASE.preprocess_spec(IMAGE_URI, ROLE_ARN), clients=aws_clients)
    assert len(fast_polling.sleeps) == 2, "two InProgress polls, slept on the virtual clock"
    with pytest.raises(JobFailed):  # the last status repeats
        wait_job(PROCESSING, "abalone-Preprocess-e1", clients=aws_clients)


def test_a_second_create_of_a_job_fails_as_on_aws(aws_clients):
    request = RELEASE.train_spec(IMAGE_URI, ROLE_ARN).request()
    aws_clients.sagemaker.create_training_job(**request)
    with pytest.raises(aws_clients.sagemaker.exceptions.ClientError) as info:
        aws_clients.sagemaker.create_training_job(**request)
    assert info.value.response["Error"]["Code"] == "ResourceInUse"
    assert "abalone-Train-e1 already exists" in str(info.value) and "second time" in str(info.value)


def test_endpoint_update_done_or_rolled_back_and_a_failed_create(aws_clients, job_statuses, fast_polling):
    first = deploy_model("kit-endpoint", IMAGE_URI, "s3://kit-bucket/a/model.tar.gz", ROLE_ARN, clients=aws_clients)
    second = deploy_model("kit-endpoint", IMAGE_URI, "s3://kit-bucket/b/model.tar.gz", ROLE_ARN, clients=aws_clients)
    assert second.endpoint.details["previous_config"] == first.config.name  # moto has no UpdateEndpoint: the kit
    job_statuses.endpoint("kit-endpoint", ["Updating", "InService"], rolled_back=True)
    with pytest.raises(DeploymentRolledBack) as info:
        deploy_model("kit-endpoint", IMAGE_URI, "s3://kit-bucket/c/model.tar.gz", ROLE_ARN, clients=aws_clients)
    assert info.value.running_config == second.config.name
    job_statuses.endpoint("kit-broken", ["Creating", "Failed"], failure_reason="image not found")
    with pytest.raises(ResourceFailed, match="image not found"):
        deploy_model("kit-broken", IMAGE_URI, "s3://kit-bucket/a/model.tar.gz", ROLE_ARN, clients=aws_clients)
    assert aws_clients.sagemaker.describe_endpoint(EndpointName="kit-broken")["EndpointStatus"] == "Failed"


def test_invoking_an_endpoint_without_a_responder_says_how_to_add_one(aws_clients):
    with pytest.raises(aws_clients.sagemaker_runtime.exceptions.ClientError, match="endpoint_responder"):
        aws_clients.sagemaker_runtime.invoke_endpoint(EndpointName="nobody", Body=b"1", ContentType="text/csv")


def test_a_script_the_code_never_plays_fails_the_test_naming_what_it_called(pytester):
    pytester.makepyfile(test_user=textwrap.dedent("""
        def test_forgets_to_train(aws_clients, job_statuses):
            job_statuses.training("abalone-Train-", ["InProgress", "Failed"], failure_reason="AlgorithmError: x")
            aws_clients.sagemaker.list_training_jobs()

        def test_stops_early(aws_clients, job_statuses):
            from mlops_core.project.release import Release
            request = Release("b", "abalone", "e9").train_spec("1.dkr.ecr.us-east-1.amazonaws.com/a:1",
                                                             "arn:aws:iam::123456789012:role/r").request()
            aws_clients.sagemaker.create_training_job(**request)
            job_statuses.training("abalone-Train-", ["InProgress", "InProgress", "Completed"])
            aws_clients.sagemaker.describe_training_job(TrainingJobName="abalone-Train-e9")
    """))
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=2, errors=2)
    out = result.stdout.str()
    assert ("job_statuses.training('abalone-Train-', ['InProgress', 'Failed'], failure_reason='AlgorithmError: x') "
            "was never used: the code under test described no training job named abalone-Train-*; it created "
            "none") in out
    assert ("job_statuses.training('abalone-Train-', ['InProgress', 'InProgress', 'Completed']) was not played to "
            "its end (abalone-Train-e9: 1 of 3 statuses reported)") in out


def test_mutating_calls_lists_what_changed(aws_clients, mutating_calls):
    aws_clients.s3.create_bucket(Bucket="kit-bucket")
    aws_clients.s3.list_buckets()
    assert mutating_calls.names() == ["s3:CreateBucket"]
    mutating_calls.clear()
    aws_clients.s3.list_buckets()
    assert mutating_calls.names() == []
