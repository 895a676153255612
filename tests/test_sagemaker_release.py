import datetime as dt

import boto3
import pytest
from botocore.stub import Stubber

from mlops_core.aws import Clients
from mlops_core.errors import AwsResourceError, ConfigError
from mlops_core.project.release import Release, pipeline_execution_id, resolve_execution_id

BUILD_ID = "abalone-train:5f0c9c34-1111-2222-3333-444455556666"
T0 = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)


def stage(name, execution_id, status, build_id=None):
    action = {"actionName": name, "latestExecution": {"status": status, "lastStatusChange": T0}}
    if build_id:
        action["latestExecution"]["externalExecutionId"] = build_id
    return {"stageName": name, "latestExecution": {"pipelineExecutionId": execution_id, "status": status},
            "actionStates": [action]}


def pipeline_clients(*stages):
    client = boto3.client("codepipeline", region_name="eu-west-1", aws_access_key_id="x", aws_secret_access_key="x")
    stubber = Stubber(client)
    stubber.add_response("get_pipeline_state", {"pipelineName": "abalone", "stageStates": list(stages)},
                         {"name": "abalone"})
    stubber.activate()
    return Clients(region="eu-west-1", codepipeline=client)


def test_configured_execution_id_wins():
    assert resolve_execution_id("e1", env={"CODEBUILD_INITIATOR": "codepipeline/abalone"}) == "e1"


def test_inside_codepipeline_the_execution_running_this_build_is_found():
    clients = pipeline_clients(stage("Source", "new-one", "Succeeded"), stage("Build", "exec-7", "InProgress", BUILD_ID),
                               stage("Deploy", "older", "Succeeded"))
    env = {"CODEBUILD_INITIATOR": "codepipeline/abalone", "CODEBUILD_BUILD_ID": BUILD_ID}
    assert resolve_execution_id(None, clients=clients, env=env) == "exec-7"


def test_without_the_build_id_the_running_stage_decides():
    clients = pipeline_clients(stage("Source", "x", "Succeeded"), stage("Build", "exec-8", "InProgress"))
    assert pipeline_execution_id("abalone", clients=clients) == "exec-8"


def test_no_running_execution_is_a_configuration_error():
    clients = pipeline_clients(stage("Source", "x", "Succeeded"))
    with pytest.raises(ConfigError, match="EXECUTION_ID.*no running execution"):
        pipeline_execution_id("abalone", clients=clients)


def test_outside_a_pipeline_only_a_first_step_generates_an_id():
    with pytest.raises(ConfigError, match="EXECUTION_ID is not set"):
        resolve_execution_id(None, env={})
    first, second = (resolve_execution_id(None, generate=True, env={}) for _ in range(2))
    assert first != second and len(first) == 36


def test_release_layout():
    release = Release("b", "abalone", "e1")
    assert release.job("Train") == "abalone-Train-e1"
    assert release.current_data == "s3://b/abalone/data/current/"
    assert release.evaluation == "s3://b/abalone/e1/evaluation/evaluation.json"
    assert release.data_capture == "s3://b/abalone/data-capture"
    evaluate = release.evaluate_spec("i", "arn:aws:iam::123456789012:role/r", "s3://b/m.tar.gz").request()
    assert evaluate["AppSpecification"]["ContainerArguments"] == ["evaluate"]
    inputs = {i["InputName"]: i["S3Input"]["LocalPath"] for i in evaluate["ProcessingInputs"]}
    assert inputs == {"model": "/opt/ml/processing/input/model", "testing": "/opt/ml/processing/input/testing",
                      "training": "/opt/ml/processing/input/training"}
    assert evaluate["ProcessingOutputConfig"]["Outputs"][0]["S3Output"]["S3Uri"] == "s3://b/abalone/e1/evaluation/"


def test_trained_model_needs_a_completed_training_job(aws):
    with pytest.raises(AwsResourceError, match="no training job"):
        Release("b", "abalone", "e1").trained_model(clients=aws)


def test_the_release_uses_its_own_immutable_image_tags():
    from mlops_core.errors import ConfigError
    from mlops_core.project.release import release_images

    repository = "123456789012.dkr.ecr.us-east-1.amazonaws.com/abalone"
    images = release_images(repository, "e1")
    assert (images.training, images.inference) == (f"{repository}:e1", f"{repository}:e1-serve")
    pinned = f"{repository}@sha256:{'a' * 64}"
    assert release_images(pinned, "e1").inference == pinned
    assert release_images(f"{repository}:v3", "e1").training == f"{repository}:v3"
    with pytest.raises(ConfigError, match="mutable tag latest"):
        release_images(f"{repository}:latest", "e1")
    assert release_images("localhost:5000/abalone", "e1").training == "localhost:5000/abalone:e1"

