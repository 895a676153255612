"""CodePipeline: the release pipeline's definition, ensure (create / update on difference) on moto, and
start / wait of executions (failures read through GetPipelineState, which moto lacks: Stubber)."""

from __future__ import annotations

import json

import boto3
import pytest
from botocore.stub import Stubber

from mlops_core.aws import Clients
from mlops_core.codepipeline import (
    delete_pipeline,
    ensure_pipeline,
    start_pipeline_execution,
    wait_pipeline_execution,
)
from mlops_core.ensure import Action
from mlops_core.errors import AwsResourceError, ResourceFailed
from mlops_core.iam import SERVICES, trust_policy
from mlops_core.polling import WaitPolicy
from mlops_core.project import Project
from mlops_core.project.buildspecs import EXPORTED, buildspec
from mlops_core.project.pipeline import pipeline_definition
from mlops_core.testing import VirtualClock

PROJECT = Project(name="abalone", account_id="123456789012", region="us-east-1")


def _actions(definition: dict) -> dict[str, dict]:
    return {a["name"]: a for stage in definition["stages"] for a in stage["actions"]}


def test_stages_and_actions_in_release_order():
    definition = pipeline_definition(PROJECT)
    assert [(s["name"], [a["name"] for a in s["actions"]]) for s in definition["stages"]] == [
        ("Source", ["PipelineCode", "ModelCode"]),
        ("Build", ["ContainerBuild", "Preprocess", "Train", "Evaluate"]),
        ("Approval", ["ApproveRelease"]),
        ("Deploy", ["Deploy"])]
    build = definition["stages"][1]["actions"]
    assert [a["runOrder"] for a in build] == [1, 2, 3, 4]
    assert definition["roleArn"] == "arn:aws:iam::123456789012:role/abalone-codepipeline"
    assert definition["artifactStore"] == {"type": "S3", "location": "abalone-123456789012-us-east-1"}


def test_every_build_action_gets_the_execution_id_from_the_pipeline():
    actions = _actions(pipeline_definition(PROJECT))
    for task in ("ContainerBuild", "Preprocess", "Train", "Evaluate", "Deploy"):
        configuration = actions[task]["configuration"]
        assert configuration["ProjectName"] == PROJECT.codebuild_project(task)
        assert json.loads(configuration["EnvironmentVariables"]) == [
            {"name": "EXECUTION_ID", "value": "#{codepipeline.PipelineExecutionId}", "type": "PLAINTEXT"}]
    assert actions["ContainerBuild"]["inputArtifacts"] == [{"name": "ModelCode"}]
    assert actions["Train"]["inputArtifacts"] == [{"name": "PipelineCode"}]
    sources = {a["configuration"]["BranchName"] for n, a in actions.items() if n.endswith("Code")}
    assert sources == {"main", "model"}


def test_approval_shows_the_summary_the_evaluate_action_exports():
    actions = _actions(pipeline_definition(PROJECT))
    custom_data = actions["ApproveRelease"]["configuration"]["CustomData"]
    assert "#{Evaluate.EVALUATION_SUMMARY}" in custom_data and len(custom_data) <= 500
    assert actions["Evaluate"]["namespace"] == "Evaluate"
    assert "EVALUATION_SUMMARY" in buildspec(PROJECT, "Evaluate")["env"]["exported-variables"]
    assert [a["name"] for a in actions.values() if "namespace" in a] == list(EXPORTED)


def test_optional_data_source_and_kms_key():
    project = PROJECT.with_settings(data_trigger_key="abalone/data/trigger.zip",
                                    kms_key_arn="arn:aws:kms:us-east-1:123456789012:key/k")
    definition = pipeline_definition(project)
    data = _actions(definition)["Data"]
    assert data["actionTypeId"]["provider"] == "S3"
    assert data["configuration"] == {"S3Bucket": project.bucket, "S3ObjectKey": "abalone/data/trigger.zip",
                                     "PollForSourceChanges": "true"}
    assert definition["artifactStore"]["encryptionKey"] == {"id": project.kms_key_arn, "type": "KMS"}
    assert "Data" not in _actions(pipeline_definition(PROJECT))


def _role(aws):
    aws.iam.create_role(RoleName="abalone-codepipeline",
                        AssumeRolePolicyDocument=json.dumps(trust_policy(SERVICES["codepipeline"])))


def test_ensure_creates_leaves_alone_and_updates_on_moto(aws, recorder):
    _role(aws)
    definition = pipeline_definition(PROJECT)
    assert ensure_pipeline(definition, tags=PROJECT.tags, clients=aws).action is Action.CREATED
    recorder.clear()
    assert ensure_pipeline(definition, tags=PROJECT.tags, clients=aws).action is Action.UNCHANGED
    assert recorder.mutating == []
    changed = pipeline_definition(PROJECT.with_settings(model_branch="container"))
    ensured = ensure_pipeline(changed, clients=aws)
    assert ensured.action is Action.UPDATED and ensured.details["changes"] == ["stages"]
    assert recorder.mutating == [("codepipeline", "UpdatePipeline")]
    current = aws.codepipeline.get_pipeline(name="abalone")["pipeline"]
    assert current["stages"][0]["actions"][1]["configuration"]["BranchName"] == "container"
    assert current["version"] == 2
    assert delete_pipeline("abalone", clients=aws).action is Action.DELETED
    assert delete_pipeline("abalone", clients=aws).action is Action.ABSENT


def test_start_and_wait_on_moto(aws):
    _role(aws)
    ensure_pipeline(pipeline_definition(PROJECT), clients=aws)
    execution_id = start_pipeline_execution("abalone", clients=aws, client_request_token="retrain-2026-01-01")
    description = wait_pipeline_execution("abalone", execution_id, clients=aws)
    assert description["pipelineExecution"]["status"] == "Succeeded"


def test_start_of_a_missing_pipeline_says_to_bootstrap(aws):
    with pytest.raises(AwsResourceError, match="pipeline missing.*does not exist.*bootstrap"):
        start_pipeline_execution("missing", clients=aws)


def _execution(status: str, summary: str | None = None) -> dict:
    execution = {"pipelineName": "abalone", "pipelineVersion": 1, "pipelineExecutionId": "e-1", "status": status}
    if summary:
        execution["statusSummary"] = summary
    return {"pipelineExecution": execution}


def _stubbed():
    client = boto3.Session(region_name="us-east-1").client("codepipeline")
    return client, Stubber(client), Clients(codepipeline=client, region="us-east-1")


def test_client_request_token_is_passed_through():
    client, stub, clients = _stubbed()
    stub.add_response("start_pipeline_execution", {"pipelineExecutionId": "e-1"},
                      {"name": "abalone", "clientRequestToken": "token-1"})
    with stub:
        assert start_pipeline_execution("abalone", clients=clients, client_request_token="token-1") == "e-1"


def test_a_failed_execution_names_the_failed_action_its_message_and_logs():
    client, stub, clients = _stubbed()
    keys = {"pipelineName": "abalone", "pipelineExecutionId": "e-1"}
    stub.add_response("get_pipeline_execution", _execution("InProgress"), keys)
    stub.add_response("get_pipeline_execution", _execution("Failed", "Train failed"), keys)
    stub.add_response("get_pipeline_state", {"pipelineName": "abalone", "stageStates": [
        {"stageName": "Source", "latestExecution": {"pipelineExecutionId": "e-1", "status": "Succeeded"},
         "actionStates": [{"actionName": "PipelineCode", "latestExecution": {"status": "Succeeded"}}]},
        {"stageName": "Build", "latestExecution": {"pipelineExecutionId": "e-1", "status": "Failed"},
         "actionStates": [
             {"actionName": "Preprocess", "latestExecution": {"status": "Succeeded"}},
             {"actionName": "Train", "latestExecution": {
                 "status": "Failed", "externalExecutionUrl": "https://console/codebuild/abalone-train:1",
                 "errorDetails": {"code": "JobFailed", "message": "Build terminated with state: FAILED"}}}]},
        {"stageName": "Deploy", "latestExecution": {"pipelineExecutionId": "e-0", "status": "Failed"},
         "actionStates": [{"actionName": "Deploy", "latestExecution": {"status": "Failed"}}]},
    ]}, {"name": "abalone"})
    clock = VirtualClock()
    with stub, pytest.raises(ResourceFailed) as failure:
        wait_pipeline_execution("abalone", "e-1", clients=clients, clock=clock)
    message = str(failure.value)
    assert "pipeline abalone execution e-1 ended Failed" in message
    assert "Build/Train: Build terminated with state: FAILED" in message
    assert "logs: https://console/codebuild/abalone-train:1" in message
    assert "Deploy/Deploy" not in message, "an older execution's failure is not this one's"
    assert len(clock.sleeps) == 1


def test_a_stopped_execution_raises_and_a_long_one_times_out():
    client, stub, clients = _stubbed()
    keys = {"pipelineName": "abalone", "pipelineExecutionId": "e-1"}
    stub.add_response("get_pipeline_execution", _execution("Stopped"), keys)
    stub.add_response("get_pipeline_state", {"pipelineName": "abalone", "stageStates": []}, {"name": "abalone"})
    for _ in range(20):
        stub.add_response("get_pipeline_execution", _execution("InProgress"), keys)
    with stub:
        with pytest.raises(ResourceFailed, match="ended Stopped"):
            wait_pipeline_execution("abalone", "e-1", clients=clients, clock=VirtualClock())
        with pytest.raises(Exception, match="gave up waiting for pipeline abalone execution e-1"):
            wait_pipeline_execution("abalone", "e-1", clients=clients, clock=VirtualClock(),
                                    policy=WaitPolicy(timeout=10))
