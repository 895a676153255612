"""The ``workflow`` build stage: the pipeline's Build stage is ContainerBuild then one ``Workflow`` action
running the Step Functions ML workflow (bin/run_workflow.py) instead of Preprocess / Train / Evaluate;
bootstrap ensures the state machine after the roles, teardown removes it. The Workflow action is also run
as CodeBuild would run it, against moto executing the state machine."""

from __future__ import annotations

import datetime as dt
import json

import boto3
import pytest
from botocore.stub import Stubber

from mlops_core.aws import Clients
from mlops_core.ensure import Action, normalize_document, retry_until_role_usable
from mlops_core.errors import ConfigError
from mlops_core.project import Project, teardown
from mlops_core.project import bootstrap as bootstrap_plan
from mlops_core.project.buildspecs import (
    SUMMARY_FILE,
    action_environment,
    build_project,
    buildspec,
    buildspecs,
    resolve_action_environment,
)
from mlops_core.project.pipeline import pipeline_definition
from mlops_core.stepfunctions import ensure_state_machine
from mlops_core.testing import record_calls
from tests.fakes import client_error, rerun_changes_nothing
from tests.test_cicd_bootstrap import ACCOUNT, _script, assert_nothing_left
from tests.test_workflow import BUCKET, EXECUTION, FAST, load_script, put_evaluation
from tests.test_workflow import executing as executing  # the fixture: moto executing state machines
from workflows import ml_workflow
from workflows.ml_workflow import definition, without_sync, workflow_role_policy

MACHINE = "abalone-ml-workflow"
MACHINE_ARN = f"arn:aws:states:us-east-1:{ACCOUNT}:stateMachine:{MACHINE}"
WORKFLOW_STAGE_PROJECTS = ["abalone-container-build", "abalone-workflow", "abalone-deploy"]


def project(**settings) -> Project:
    return Project(name="abalone", account_id=ACCOUNT, region="us-east-1", **{"build_stage": "workflow", **settings})


def bootstrap(p: Project, **kwargs):
    """The plan's bootstrap given the ML workflow's definition, as bin/bootstrap.py gives it."""
    workflow = ml_workflow.definition(p.role_arn("sagemaker")) if p.build_stage == "workflow" else None
    return bootstrap_plan(p, workflow_definition=workflow, **kwargs)


def test_the_workflow_stage_without_its_definition_is_a_config_error_before_any_call(aws, recorder):
    with pytest.raises(ConfigError, match="abalone-ml-workflow: pass its definition"):
        bootstrap_plan(project(), clients=aws)
    assert recorder.calls == []


def _actions(definition: dict) -> dict[str, dict]:
    return {a["name"]: a for stage in definition["stages"] for a in stage["actions"]}


def _statements(aws, role: str) -> dict[str, dict]:
    document = aws.iam.get_role_policy(RoleName=role, PolicyName="least-privilege")["PolicyDocument"]
    return {s["Sid"]: s for s in normalize_document(document)["Statement"]}


def test_an_unknown_build_stage_is_refused():
    with pytest.raises(ValueError, match="unknown build stage 'lambda'.*'jobs', 'workflow'"):
        project(build_stage="lambda")


def test_the_build_stage_is_container_build_then_one_workflow_action():
    definition = pipeline_definition(project())
    assert [(s["name"], [a["name"] for a in s["actions"]]) for s in definition["stages"]] == [
        ("Source", ["PipelineCode", "ModelCode"]), ("Build", ["ContainerBuild", "Workflow"]),
        ("Approval", ["ApproveRelease"]), ("Deploy", ["Deploy"])]
    actions = _actions(definition)
    workflow = actions["Workflow"]
    assert workflow["runOrder"] == 2 and workflow["inputArtifacts"] == [{"name": "PipelineCode"}]
    assert workflow["configuration"]["ProjectName"] == "abalone-workflow"
    assert json.loads(workflow["configuration"]["EnvironmentVariables"]) == [
        {"name": "EXECUTION_ID", "value": "#{codepipeline.PipelineExecutionId}", "type": "PLAINTEXT"}]
    assert [a["name"] for a in actions.values() if "namespace" in a] == ["Workflow"]
    assert workflow["namespace"] == "Workflow"
    assert actions["ApproveRelease"]["configuration"]["CustomData"] == (
        "Release #{codepipeline.PipelineExecutionId}: #{Workflow.EVALUATION_SUMMARY}")
    jobs = pipeline_definition(project(build_stage="jobs"))
    assert [s for s in definition["stages"] if s["name"] in ("Source", "Deploy")] == [
        s for s in jobs["stages"] if s["name"] in ("Source", "Deploy")]


def test_the_workflow_buildspec_runs_the_state_machine_and_exports_the_summary():
    p = project(epochs=5, threshold=1.9)
    assert list(buildspecs(p)) == ["ContainerBuild", "Workflow", "Deploy"]
    spec = buildspec(p, "Workflow")
    assert spec["phases"]["build"]["commands"] == [
        "python bin/run_workflow.py --summary-file evaluation-summary.txt",
        'export EVALUATION_SUMMARY="$(cat evaluation-summary.txt)"']
    assert spec["env"]["exported-variables"] == ["EVALUATION_SUMMARY"]
    assert spec["env"]["variables"] == {"PROJECT_NAME": "abalone", "EPOCHS": "5", "BATCH_SIZE": "64",
                                        "THRESHOLD": "1.9"}
    assert spec["env"]["parameter-store"] == buildspec(p, "Evaluate")["env"]["parameter-store"]
    assert action_environment(p, "Workflow")["EXECUTION_ID"].source == "pipeline"
    definition = build_project(p, "Workflow")
    assert definition["timeoutInMinutes"] == 120 + 480 + 120
    assert definition["environment"]["privilegedMode"] is False


def test_bootstrap_creates_the_state_machine_after_the_roles_and_the_workflow_project(aws):
    p = project()
    results = bootstrap(p, clients=aws)
    assert {r.action for r in results} == {Action.CREATED}
    kinds = [(r.kind, r.name) for r in results]
    assert kinds.index(("state machine", MACHINE)) > kinds.index(("iam role", "abalone-stepfunctions"))
    assert [name for kind, name in kinds if kind == "codebuild project"] == WORKFLOW_STAGE_PROJECTS
    assert sorted(aws.codebuild.list_projects()["projects"]) == sorted(WORKFLOW_STAGE_PROJECTS)

    machine = aws.stepfunctions.describe_state_machine(stateMachineArn=MACHINE_ARN)
    assert machine["roleArn"] == p.role_arn("stepfunctions")
    assert json.loads(machine["definition"]) == definition(p.role_arn("sagemaker"))
    tags = aws.stepfunctions.list_tags_for_resource(resourceArn=MACHINE_ARN)["tags"]
    assert {t["key"]: t["value"] for t in tags} == {"model": "abalone", "project": "abalone"}

    stored = aws.iam.get_role_policy(RoleName="abalone-stepfunctions", PolicyName="least-privilege")
    assert normalize_document(stored["PolicyDocument"]) == normalize_document(workflow_role_policy(
        bucket=p.bucket, model=p.model, sagemaker_role_arn=p.role_arn("sagemaker"), region=p.region,
        account=ACCOUNT))
    codebuild = _statements(aws, "abalone-codebuild")
    assert codebuild["Workflow"]["Action"] == ["states:DescribeStateMachine", "states:StartExecution"]
    assert codebuild["Workflow"]["Resource"] == [MACHINE_ARN]
    assert codebuild["WorkflowExecutions"]["Action"] == ["states:DescribeExecution", "states:GetExecutionHistory"]
    assert codebuild["WorkflowExecutions"]["Resource"] == [
        f"arn:aws:states:us-east-1:{ACCOUNT}:execution:{MACHINE}:*"]
    stages = aws.codepipeline.get_pipeline(name="abalone")["pipeline"]["stages"]
    assert [a["name"] for a in stages[1]["actions"]] == ["ContainerBuild", "Workflow"]


def test_a_second_bootstrap_makes_zero_mutating_calls(aws, recorder):
    results = rerun_changes_nothing(lambda: bootstrap(project(), clients=aws), recorder)
    assert ("state machine", MACHINE) in [(r.kind, r.name) for r in results]


def test_dry_run_plans_the_state_machine_and_changes_nothing(aws, recorder):
    results = bootstrap(project(), dry_run=True, clients=aws)
    assert recorder.mutating == []
    planned = [(r.kind, r.name) for r in results if r.action is Action.CREATED and r.details["dry_run"]]
    assert planned == [(r.kind, r.name) for r in results] and ("state machine", MACHINE) in planned
    assert aws.stepfunctions.list_state_machines()["stateMachines"] == []


def test_switching_a_project_to_the_workflow_stage_changes_only_what_the_stage_needs(aws, recorder):
    bootstrap(project(build_stage="jobs"), clients=aws)
    recorder.clear()
    results = bootstrap(project(), clients=aws)
    # the roles name the stage's build projects exactly; the Step Functions role's policy is the same in both
    assert [(r.kind, r.name) for r in results if r.changed] == [
        ("iam role", "abalone-codepipeline"), ("iam role", "abalone-codebuild"), ("state machine", MACHINE),
        ("codebuild project", "abalone-workflow"), ("codepipeline pipeline", "abalone")]
    assert sorted(recorder.mutating) == sorted([
        ("iam", "PutRolePolicy"), ("iam", "PutRolePolicy"), ("iam", "UpdateAssumeRolePolicy"),
        ("stepfunctions", "CreateStateMachine"), ("codebuild", "CreateProject"), ("codepipeline", "UpdatePipeline")])


def test_teardown_removes_the_state_machine_and_can_run_twice(aws):
    bootstrap(project(), clients=aws)
    results = teardown(project(), clients=aws)
    assert {r.action for r in results} == {Action.DELETED}
    assert ("state machine", MACHINE) in [(r.kind, r.name) for r in results]
    assert aws.stepfunctions.list_state_machines()["stateMachines"] == []
    assert_nothing_left(aws)
    again = teardown(project(), clients=aws)
    assert {r.action for r in again} == {Action.ABSENT}
    assert ("state machine", MACHINE) in [(r.kind, r.name) for r in again]


def test_teardown_with_either_stage_removes_what_the_other_stage_left(aws):
    bootstrap(project(build_stage="jobs"), clients=aws)
    bootstrap(project(), clients=aws)  # switched: the Preprocess / Train / Evaluate projects stay
    deleted = [(r.kind, r.name) for r in teardown(project(build_stage="jobs"), clients=aws)]
    assert {("codebuild project", "abalone-workflow"), ("state machine", MACHINE)} <= set(deleted)
    assert aws.stepfunctions.list_state_machines()["stateMachines"] == []
    assert_nothing_left(aws)


def test_bootstrap_and_teardown_scripts_take_the_build_stage(aws, capsys):
    assert _script("bootstrap").main(["--project", "abalone", "--build-stage", "workflow", "--dry-run"],
                                     clients=aws) == 0
    plan = capsys.readouterr().out
    assert f"would create       state machine {MACHINE}" in plan
    assert "would create       codebuild project abalone-workflow" in plan and "abalone-train" not in plan
    assert _script("bootstrap").main(["--project", "abalone", "--build-stage", "workflow"], clients=aws) == 0
    assert _script("teardown").main(["--project", "abalone", "--yes"], clients=aws) == 0
    assert f"delete             state machine {MACHINE}" in capsys.readouterr().out
    assert_nothing_left(aws)


def test_the_workflow_action_runs_a_release_with_what_codebuild_gives_it(executing, monkeypatch, tmp_path):
    """bootstrap, then the Workflow action's command with its CodeBuild environment: the release passes,
    the summary is written, and every Step Functions call is one the CodeBuild role is allowed."""
    monkeypatch.setattr(ml_workflow, "definition", lambda *a, **kw: without_sync(definition(*a, **kw)))
    monkeypatch.setattr(ml_workflow, "DEFAULT_POLICY", FAST)
    recorder = record_calls(executing.session)  # before the Step Functions client is built
    p = project(bucket_name=BUCKET, tls_only=False)
    bootstrap(p, clients=executing)
    put_evaluation(executing, 2.0)
    for name, value in resolve_action_environment(p, "Workflow", EXECUTION, clients=executing).items():
        monkeypatch.setenv(name, value)
    script = load_script()
    monkeypatch.setattr(script, "Clients", lambda **_: executing)
    monkeypatch.chdir(tmp_path)
    recorder.clear()
    assert script.main(["--summary-file", SUMMARY_FILE]) == 0
    assert (tmp_path / SUMMARY_FILE).read_text() == "RMSE 2.000 < linear baseline 2.400, < training mean 3.300: PASS\n"
    called = {f"states:{op}" for service, op in recorder.calls if service == "stepfunctions"}
    granted = {action for s in _statements(executing, "abalone-codebuild").values() for action in s["Action"]
               if action.startswith("states:")}
    assert called and called <= granted, called - granted
    executions = executing.stepfunctions.list_executions(stateMachineArn=MACHINE_ARN)["executions"]
    assert [(e["name"], e["status"]) for e in executions] == [(EXECUTION, "SUCCEEDED")]


NOT_YET = ("Neither the global service principal states.amazonaws.com, nor the regional one is authorized to "
           "assume the provided role.")


def test_creating_the_state_machine_waits_while_its_new_role_cannot_be_assumed_yet():
    sfn, sts = (boto3.Session(region_name="us-east-1").client(s) for s in ("stepfunctions", "sts"))
    clients = Clients(stepfunctions=sfn, sts=sts, region="us-east-1")
    with Stubber(sfn) as sfn_stub, Stubber(sts) as sts_stub:
        sts_stub.add_response("get_caller_identity", {"Account": ACCOUNT, "Arn": "arn:aws:iam::1:user/me",
                                                      "UserId": "me"})
        sfn_stub.add_client_error("describe_state_machine", "StateMachineDoesNotExist",
                                  expected_params={"stateMachineArn": MACHINE_ARN})
        sfn_stub.add_client_error("create_state_machine", "AccessDeniedException", NOT_YET)
        sfn_stub.add_response("create_state_machine", {"stateMachineArn": MACHINE_ARN,
                                                       "creationDate": dt.datetime(2026, 1, 1)})
        ensured = ensure_state_machine(MACHINE, {"StartAt": "A", "States": {"A": {"Type": "Succeed"}}},
                                       project().role_arn("stepfunctions"), clients=clients)
        sfn_stub.assert_no_pending_responses()
    assert (ensured.action, ensured.arn) == (Action.CREATED, MACHINE_ARN)


def test_the_callers_own_access_denied_is_not_retried():
    sleeps: list[float] = []

    def call():
        raise client_error("AccessDeniedException", "User: arn:aws:iam::1:user/me is not authorized to perform: "
                           "states:CreateStateMachine on resource: " + MACHINE_ARN)

    with pytest.raises(Exception, match="not authorized to perform"):
        retry_until_role_usable(call, sleep=sleeps.append)
    assert sleeps == []
