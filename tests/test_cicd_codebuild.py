"""CodeBuild: buildspecs as data, the environment of each action, update only on a difference (Stubber:
moto has no UpdateProject), waiting out IAM role propagation."""

from __future__ import annotations

import json

import boto3
import pytest
from botocore.stub import ANY, Stubber

from mlops_core.aws import Clients
from mlops_core.codebuild import delete_build_logs, delete_project, ensure_project
from mlops_core.ensure import Action, retry_until_role_usable
from mlops_core.errors import ConfigError
from mlops_core.project import TASKS, Project
from mlops_core.project.buildspecs import (
    EXECUTION_ID_VARIABLE,
    action_environment,
    build_project,
    buildspec,
    buildspecs,
    resolve_action_environment,
)
from mlops_core.ssm import ensure_parameter
from tests.fakes import client_error

PROJECT = Project(name="abalone", account_id="123456789012", region="us-east-1", epochs=50, threshold=2.0)


def test_every_task_has_a_json_buildspec_running_its_script():
    specs = buildspecs(PROJECT)
    assert list(specs) == list(TASKS)
    for task, spec in specs.items():
        assert json.loads(json.dumps(spec)) == spec and spec["version"] == 0.2
        commands = spec["phases"]["build"]["commands"]
        if task == "ContainerBuild":
            assert [c for c in commands if "docker build" in c and "docker push" in c] == [
                c for c in commands if "describe-images" in c]  # a tag already pushed is left alone
            assert any('--target train -t "$IMAGE_URI:$EXECUTION_ID"' in c for c in commands)
            assert any('--target serve -t "$IMAGE_URI:$EXECUTION_ID-serve"' in c for c in commands)
        else:
            assert spec["phases"]["install"]["commands"] == ["pip install -e ."]
            script = "python bin/deploy.py" if task == "Deploy" else f"python bin/build.py {task.lower()}"
            assert commands[0].startswith(script)
        assert "EXECUTION_ID" not in json.dumps(spec["env"]), "the execution id comes from the pipeline action"
        assert all(name.startswith("/abalone/") for name in spec["env"]["parameter-store"].values())


def test_evaluate_exports_its_summary_and_settings_reach_only_their_task():
    evaluate = buildspec(PROJECT, "Evaluate")
    assert evaluate["env"]["exported-variables"] == ["EVALUATION_SUMMARY"]
    assert evaluate["phases"]["build"]["commands"][0] == (
        "python bin/build.py evaluate --fail-on-gate --summary-file evaluation-summary.txt")
    assert evaluate["phases"]["build"]["commands"][1] == 'export EVALUATION_SUMMARY="$(cat evaluation-summary.txt)"'
    assert evaluate["env"]["variables"]["THRESHOLD"] == "2.0"
    assert buildspec(PROJECT, "Train")["env"]["variables"]["EPOCHS"] == "50"
    assert buildspec(PROJECT, "Preprocess")["env"]["variables"] == {"PROJECT_NAME": "abalone", "RETRY_FAILED": "true"}
    assert buildspec(PROJECT.with_settings(retry_failed=False), "Train")["env"]["variables"]["RETRY_FAILED"] == "false"
    assert buildspec(PROJECT, "Deploy")["env"]["variables"] == {"PROJECT_NAME": "abalone", "THRESHOLD": "2.0"}


def test_action_environment_says_where_each_value_comes_from():
    env = action_environment(PROJECT, "Train")
    assert env["EXECUTION_ID"].value == EXECUTION_ID_VARIABLE and env["EXECUTION_ID"].source == "pipeline"
    assert (env["BUCKET_NAME"].value, env["BUCKET_NAME"].source) == ("/abalone/bucket-name", "parameter-store")
    assert (env["EPOCHS"].value, env["EPOCHS"].source) == ("50", "variables")
    assert set(env) == {"EXECUTION_ID", "PROJECT_NAME", "EPOCHS", "BATCH_SIZE", "MODEL_NAME", "BUCKET_NAME",
                        "ROLE_ARN", "IMAGE_URI", "MODEL_PACKAGE_GROUP", "PIPELINE_NAME", "RETRY_FAILED"}


def test_resolve_action_environment_reads_ssm_like_codebuild(aws):
    with pytest.raises(ConfigError, match="/abalone/bucket-name.*bootstrap"):
        resolve_action_environment(PROJECT, "Evaluate", "exec-1", clients=aws)
    for name, value in PROJECT.parameters().items():
        ensure_parameter(name, value, clients=aws)
    env = resolve_action_environment(PROJECT, "Evaluate", "exec-1", clients=aws)
    assert env == {"EXECUTION_ID": "exec-1", "PROJECT_NAME": "abalone", "THRESHOLD": "2.0", "RETRY_FAILED": "true",
                   "MODEL_NAME": "abalone", "BUCKET_NAME": "abalone-123456789012-us-east-1",
                   "ROLE_ARN": "arn:aws:iam::123456789012:role/abalone-sagemaker",
                   "IMAGE_URI": "123456789012.dkr.ecr.us-east-1.amazonaws.com/abalone",
                   "MODEL_PACKAGE_GROUP": "abalone", "PIPELINE_NAME": "abalone"}


def _as_aws_describes(definition: dict) -> dict:
    """What BatchGetProjects answers for ``definition``: no location for CODEPIPELINE, defaults added."""
    project = json.loads(json.dumps(definition))
    project["source"].pop("location")
    project["artifacts"].pop("location")
    project["environment"].update({"environmentVariables": [], "imagePullCredentialsType": "CODEBUILD"})
    project.update({"arn": "arn:aws:codebuild:us-east-1:123456789012:project/" + definition["name"],
                    "queuedTimeoutInMinutes": 480, "badge": {"badgeEnabled": False}})
    return {"projects": [project]}


def _stubbed():
    client = boto3.Session(region_name="us-east-1").client("codebuild")
    return client, Stubber(client), Clients(codebuild=client, region="us-east-1")


def test_unchanged_project_is_left_alone_even_though_aws_drops_the_location():
    definition = build_project(PROJECT, "Train")
    client, stub, clients = _stubbed()
    stub.add_response("batch_get_projects", _as_aws_describes(definition), {"names": ["abalone-train"]})
    with stub:
        assert ensure_project(definition, clients=clients).action is Action.UNCHANGED
        stub.assert_no_pending_responses()


def test_a_changed_buildspec_is_one_update_project_call():
    old = build_project(PROJECT, "Train")
    new = build_project(PROJECT.with_settings(epochs=3), "Train")
    client, stub, clients = _stubbed()
    stub.add_response("batch_get_projects", _as_aws_describes(old), {"names": ["abalone-train"]})
    stub.add_response("update_project", {"project": _as_aws_describes(new)["projects"][0]}, new)
    with stub:
        ensured = ensure_project(new, clients=clients)
        stub.assert_no_pending_responses()
    assert ensured.action is Action.UPDATED and ensured.details["changes"] == ["source"]


def test_dry_run_plans_the_update_without_calling_it():
    old = build_project(PROJECT, "Train")
    client, stub, clients = _stubbed()
    stub.add_response("batch_get_projects", _as_aws_describes(old), {"names": ["abalone-train"]})
    new = dict(old, timeoutInMinutes=60)
    with stub:
        ensured = ensure_project(new, dry_run=True, clients=clients)
        stub.assert_no_pending_responses()
    assert ensured.action is Action.UPDATED and ensured.details == {"changes": ["timeoutInMinutes"], "dry_run": True}


def test_create_waits_while_the_new_role_cannot_be_assumed_yet():
    sleeps: list[float] = []
    answers = iter([client_error("InvalidInputException", "CodeBuild is not authorized to perform: "
                                 "sts:AssumeRole on arn:aws:iam::123456789012:role/abalone-codebuild"),
                    client_error("InvalidInputException", "CodeBuild is not authorized to perform: sts:AssumeRole"),
                    "created"])

    def call():
        answer = next(answers)
        if isinstance(answer, Exception):
            raise answer
        return answer

    assert retry_until_role_usable(call, sleep=sleeps.append) == "created"
    assert len(sleeps) == 2


@pytest.mark.parametrize("error", [
    client_error("InvalidInputException", "Invalid compute type"),
    client_error("AccessDeniedException", "User: arn:aws:iam::1:user/me is not authorized to perform: "
                 "codebuild:CreateProject"),
])
def test_other_errors_are_not_retried(error):
    sleeps: list[float] = []

    def call():
        raise error

    with pytest.raises(Exception, match=error.response["Error"]["Code"]):
        retry_until_role_usable(call, sleep=sleeps.append)
    assert sleeps == []


def test_create_project_passes_the_definition_and_delete_tolerates_absence(aws):
    definition = build_project(PROJECT, "Deploy")
    aws.iam.create_role(RoleName="abalone-codebuild", AssumeRolePolicyDocument="{}")
    assert ensure_project(definition, clients=aws).action is Action.CREATED
    current = aws.codebuild.batch_get_projects(names=["abalone-deploy"])["projects"][0]
    assert json.loads(current["source"]["buildspec"]) == buildspec(PROJECT, "Deploy")
    assert current["serviceRole"] == PROJECT.role_arn("codebuild") and current["timeoutInMinutes"] == 120
    assert ensure_project(definition, clients=aws).action is Action.UNCHANGED
    assert delete_project("abalone-deploy", clients=aws).action is Action.DELETED
    assert delete_project("abalone-deploy", clients=aws).action is Action.ABSENT


def test_kms_key_reaches_the_projects():
    definition = build_project(PROJECT.with_settings(kms_key_arn="arn:aws:kms:us-east-1:1:key/k"), "Train")
    assert definition["encryptionKey"] == "arn:aws:kms:us-east-1:1:key/k"


def test_build_logs_of_the_project_are_deleted_and_others_kept(aws):
    for group in ("/aws/codebuild/abalone-train", "/aws/codebuild/abalone-deploy", "/aws/codebuild/other-train"):
        aws.logs.create_log_group(logGroupName=group)
    deleted = delete_build_logs("abalone-", clients=aws)
    assert sorted(d.name for d in deleted) == ["/aws/codebuild/abalone-deploy", "/aws/codebuild/abalone-train"]
    assert [g["logGroupName"] for g in aws.logs.describe_log_groups()["logGroups"]] == ["/aws/codebuild/other-train"]
    assert delete_build_logs("abalone-", clients=aws) == []


def test_stubbed_create_gets_tags_and_service_role():
    definition = build_project(PROJECT, "ContainerBuild")
    client, stub, clients = _stubbed()
    stub.add_response("batch_get_projects", {"projects": [], "projectsNotFound": ["abalone-container-build"]})
    stub.add_response("create_project", {"project": {"name": "abalone-container-build"}},
                      {**definition, "tags": [{"key": "project", "value": "abalone"}], "serviceRole": ANY})
    with stub:
        assert ensure_project(definition, clients=clients).action is Action.CREATED
        stub.assert_no_pending_responses()
    assert definition["environment"]["privilegedMode"] is True


def test_container_build_uses_the_dockerfile_folder_as_its_context():
    """The Dockerfile COPYs paths relative to model_container/, so that folder must be the build context."""
    from pathlib import Path

    from mlops_core.project.buildspecs import buildspec

    repo = Path(__file__).resolve().parents[1]
    variables = buildspec(PROJECT, "ContainerBuild")["env"]["variables"]
    context = repo / variables["DOCKER_CONTEXT"]
    assert (repo / variables["DOCKERFILE"]).parent == context
    copied = [line.split()[1] for line in (repo / variables["DOCKERFILE"]).read_text().splitlines()
              if line.startswith("COPY ")]
    assert copied and all((context / source).exists() for source in copied)
