"""The ML workflow's ASL, checked by shape and by executing it in moto's Step Functions interpreter.

moto cannot wait on SageMaker jobs, so the executed definition uses the non-``.sync`` forms of the job
resources (moto's SageMaker jobs are Completed on creation); evaluation.json is put where the evaluate
job would write it.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import boto3
import pytest
from botocore.awsrequest import AWSResponse

from mlops_core.aws import Clients
from mlops_core.config import load_config
from mlops_core.errors import WorkflowFailed
from mlops_core.naming import job_name
from mlops_core.polling import WaitPolicy
from mlops_core.stepfunctions import ensure_state_machine, execution_name, start_execution, wait_execution
from tests.conftest import REGION
from tests.fakes import IMAGE_URI, ROLE_ARN, evaluation_document
from workflows import ml_workflow
from workflows.ml_workflow import definition, gate_result, without_sync, workflow_input

BUCKET, MODEL, EXECUTION = "abalone-bucket", "abalone", "0f1e2d3c-aaaa-bbbb-cccc-123456789abc"
FAST = WaitPolicy(initial_delay=0.05, min_delay=0.1, max_delay=0.2, timeout=30)
HAPPY_PATH = ["Preprocess", "Train", "Evaluate", "ReadEvaluation", "CheckQuality", "Register"]


def config(**overrides) -> object:
    values = {"model_name": MODEL, "bucket_name": BUCKET, "role_arn": ROLE_ARN, "image_uri": IMAGE_URI,
              "execution_id": EXECUTION, "threshold": "2.1", "epochs": "3", "batch_size": "16"}
    return load_config(overrides={**values, **overrides}, env={})


@pytest.fixture
def executing(monkeypatch):
    """moto with Step Functions executing definitions; SDK responses serialised the way AWS does."""
    from moto import mock_aws
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import (
        state_task_service_aws_sdk as sdk,
    )

    original = sdk.StateTaskServiceAwsSdk._eval_service_task

    def like_aws(self, env, *args, **kwargs):
        original(self, env, *args, **kwargs)  # AWS returns bodies as strings and timestamps as ISO text
        env.stack[-1] = json.loads(json.dumps(env.stack[-1], default=lambda v: v.read().decode()
                                              if hasattr(v, "read") else v.isoformat()))

    monkeypatch.setattr(sdk.StateTaskServiceAwsSdk, "_eval_service_task", like_aws)
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
        clients = Clients(boto3.Session(region_name=REGION))
        clients.s3.create_bucket(Bucket=BUCKET)
        clients.sagemaker.create_model_package_group(ModelPackageGroupName=MODEL)
        yield clients


def put_evaluation(clients, rmse: float, execution_id: str = EXECUTION) -> None:
    clients.s3.put_object(Bucket=BUCKET, Key=f"{MODEL}/{execution_id}/evaluation/evaluation.json",
                          Body=json.dumps(evaluation_document(rmse)).encode())


def execute(clients, *, compare_with_approved: bool = False, cfg=None, **input_overrides) -> tuple[str, dict]:
    """Run the (non-sync) workflow for one release; returns the execution ARN and the description."""
    cfg = cfg or config()
    machine = ensure_state_machine("abalone-ml-workflow", without_sync(
        definition(ROLE_ARN, compare_with_approved=compare_with_approved)), ROLE_ARN, clients=clients)
    arn = start_execution(machine.arn, execution_name(cfg.execution_id),
                          {**workflow_input(cfg), **input_overrides}, clients=clients)
    try:
        return arn, wait_execution(arn, clients=clients, policy=FAST)
    except WorkflowFailed as failure:
        failure.arn = arn
        raise


def state_path(clients, arn: str) -> list[str]:
    events = clients.stepfunctions.get_execution_history(executionArn=arn)["events"]
    return [e["stateEnteredEventDetails"]["name"] for e in events if "stateEnteredEventDetails" in e]


def packages(clients) -> list[dict]:
    return clients.sagemaker.list_model_packages(ModelPackageGroupName=MODEL)["ModelPackageSummaryList"]


# --- shape -----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("compare", [False, True])
def test_definition_is_lambda_free_with_retries_and_named_failures(compare):
    asl = definition(ROLE_ARN, compare_with_approved=compare)
    states = asl["States"]
    assert json.loads(json.dumps(asl)) == asl
    resources = {s["Resource"] for s in states.values() if s["Type"] == "Task"}
    assert {"arn:aws:states:::sagemaker:createProcessingJob.sync", "arn:aws:states:::sagemaker:createTrainingJob.sync",
            "arn:aws:states:::aws-sdk:s3:getObject", "arn:aws:states:::aws-sdk:sagemaker:createModelPackage"} <= resources
    assert not any("lambda" in r for r in resources)
    assert states["ReadEvaluation"]["ResultSelector"] == {"metrics.$": "States.StringToJson($.Body)"}
    for name, state in states.items():
        for target in [state.get("Next"), state.get("Default"), *[c["Next"] for c in state.get("Choices", [])],
                       *[c["Next"] for c in state.get("Catch", [])]]:
            assert target is None or target in states, f"{name} -> {target}"
        if state["Type"] == "Task":
            retry = state["Retry"][0]
            assert retry["BackoffRate"] > 1 and retry["MaxAttempts"] >= 3
            assert state["Catch"] == [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.failure",
                                       "Next": f"{name}Failed"}]
            assert states[f"{name}Failed"]["Type"] == "Fail"
            assert f"step {name} failed" in states[f"{name}Failed"]["CausePath"]
    job_retry = states["Train"]["Retry"][0]["ErrorEquals"]
    assert "SageMaker.AmazonSageMakerException" in job_retry and "States.TaskFailed" not in job_retry
    assert ("FindApproved" in states) is compare


def test_workflow_input_uses_the_pipeline_job_names():
    payload = workflow_input(config())
    assert payload["jobs"] == {"preprocess": job_name(MODEL, "Preprocess", EXECUTION),
                               "train": job_name(MODEL, "Train", EXECUTION),
                               "evaluate": job_name(MODEL, "Evaluate", EXECUTION)}
    assert payload["hyperparameters"] == {"epochs": "3", "batch_size": "16"}
    assert payload["threshold"] == 2.1 and len(payload["register_token"]) <= 36


def metrics(rmse: float) -> dict:
    return {"metrics": evaluation_document(rmse)}


def test_summary_line_is_the_gate_summary():
    output = {**workflow_input(config()), "evaluation": metrics(2.0123)}
    assert gate_result(output).summary == \
        "RMSE 2.012 < linear baseline 2.400, < training mean 3.300, <= threshold 2.100: PASS"
    assert gate_result(output).evaluation_uri == f"s3://{BUCKET}/{MODEL}/{EXECUTION}/evaluation/evaluation.json"
    output["approved"] = {"arns": ["arn:v1"], "evaluation": metrics(1.5),
                          "described": {"CustomerMetadataProperties": {"ExecutionId": "earlier"}}}
    assert gate_result(output).summary == ("RMSE 2.012 < linear baseline 2.400, < training mean 3.300, <= threshold "
                                           "2.100, > 1.550 allowed by the latest approved 1.500: FAIL")


# --- executed in moto ------------------------------------------------------------------------------------

def test_passing_model_is_registered_with_its_metrics(executing):
    put_evaluation(executing, 1.9)
    arn, description = execute(executing)
    assert description["status"] == "SUCCEEDED"
    assert state_path(executing, arn) == HAPPY_PATH
    [package] = packages(executing)
    registered = executing.sagemaker.describe_model_package(ModelPackageName=package["ModelPackageArn"])
    assert registered["ModelApprovalStatus"] == "PendingManualApproval"
    assert registered["CustomerMetadataProperties"] == {"rmse": "1.9", "ExecutionId": EXECUTION}
    assert f"[release {EXECUTION}]" in registered["ModelPackageDescription"]  # as the registry marks releases
    assert registered["ModelMetrics"]["ModelQuality"]["Statistics"]["S3Uri"] == \
        f"s3://{BUCKET}/{MODEL}/{EXECUTION}/evaluation/evaluation.json"
    container = registered["InferenceSpecification"]["Containers"][0]
    train = job_name(MODEL, "Train", EXECUTION)
    assert container["ModelDataUrl"] == f"s3://{BUCKET}/{MODEL}/{EXECUTION}/model/{train}/output/model.tar.gz"
    training = executing.sagemaker.describe_training_job(TrainingJobName=train)
    assert training["OutputDataConfig"]["S3OutputPath"] == f"s3://{BUCKET}/{MODEL}/{EXECUTION}/model"
    assert training["HyperParameters"] == {"epochs": "3", "batch_size": "16"}
    evaluate = executing.sagemaker.describe_processing_job(ProcessingJobName=job_name(MODEL, "Evaluate", EXECUTION))
    assert evaluate["AppSpecification"]["ContainerArguments"] == ["evaluate"]
    assert {i["InputName"]: i["S3Input"]["S3Uri"] for i in evaluate["ProcessingInputs"]} == {
        "model": container["ModelDataUrl"], "testing": f"s3://{BUCKET}/{MODEL}/{EXECUTION}/preprocess/testing/",
        "training": f"s3://{BUCKET}/{MODEL}/{EXECUTION}/preprocess/training/"}
    output = json.loads(description["output"])
    assert gate_result(output).summary == \
        "RMSE 1.900 < linear baseline 2.400, < training mean 3.300, <= threshold 2.100: PASS"


@pytest.mark.parametrize("rmse, threshold", [(2.5, "2.1"), (2.5, None), (2.0, "1.9")],
                         ids=["worse-than-the-linear-baseline", "no-threshold-needed", "over-an-absolute-threshold"])
def test_model_failing_the_gate_is_not_registered(executing, rmse, threshold):
    put_evaluation(executing, rmse)
    with pytest.raises(WorkflowFailed) as failed:
        execute(executing, cfg=config(threshold=threshold))
    assert state_path(executing, failed.value.arn) == [*HAPPY_PATH[:-1], "QualityGateFailed"]
    assert failed.value.state == "QualityGateFailed"
    assert f"RMSE {rmse} does not beat the baselines (linear 2.4, training mean 3.3) or the threshold" in str(failed.value)
    assert packages(executing) == []


def test_without_a_threshold_the_baselines_decide(executing):
    put_evaluation(executing, 2.3)
    _, description = execute(executing, cfg=config(threshold=None))
    assert description["status"] == "SUCCEEDED" and len(packages(executing)) == 1


def test_job_error_is_caught_into_a_fail_state_naming_the_step(executing, monkeypatch):
    """CreateTrainingJob is refused (an account limit): Train -> TrainFailed, nothing evaluated."""
    def refuse(**_kwargs):
        return (AWSResponse("https://sagemaker", 400, {}, None),
                {"Error": {"Code": "ResourceLimitExceeded", "Message": "ml.m5.large training job limit 0"},
                 "ResponseMetadata": {"HTTPStatusCode": 400, "RequestId": "r"}})

    monkeypatch.setattr(boto3, "DEFAULT_SESSION", None)
    boto3.setup_default_session(region_name=REGION)  # moto's interpreter builds its clients from this session
    boto3.DEFAULT_SESSION.events.register("before-call.sagemaker.CreateTrainingJob", refuse)
    put_evaluation(executing, 1.9)
    with pytest.raises(WorkflowFailed) as failed:
        execute(executing)
    assert state_path(executing, failed.value.arn) == ["Preprocess", "Train", "TrainFailed"]
    assert failed.value.state == "Train"
    assert "TrainFailed" in str(failed.value) and "step Train failed" in str(failed.value)
    assert "ResourceLimitExceeded" in str(failed.value)
    assert executing.sagemaker.list_processing_jobs()["ProcessingJobSummaries"][0]["ProcessingJobName"] == \
        job_name(MODEL, "Preprocess", EXECUTION)
    assert len(executing.sagemaker.list_processing_jobs()["ProcessingJobSummaries"]) == 1


def test_registration_error_names_the_register_step(executing):
    put_evaluation(executing, 1.9)
    with pytest.raises(WorkflowFailed) as failed:
        execute(executing, model_package_group="no-such-group")
    assert state_path(executing, failed.value.arn) == [*HAPPY_PATH, "RegisterFailed"]
    assert failed.value.state == "Register" and "Model Package Group does not exist" in str(failed.value)


def approve(clients, rmse: float | None) -> None:
    """An approved version of an earlier release (with its evaluation), or registered by hand (rmse None)."""
    properties = {}
    if rmse is not None:
        properties = {"CustomerMetadataProperties": {"ExecutionId": "earlier-release"}}
        put_evaluation(clients, rmse, "earlier-release")
    arn = clients.sagemaker.create_model_package(
        ModelPackageGroupName=MODEL, ModelApprovalStatus="Approved", **properties,
        InferenceSpecification={"Containers": [{"Image": IMAGE_URI}], "SupportedContentTypes": ["text/csv"],
                                "SupportedResponseMIMETypes": ["text/csv"]})["ModelPackageArn"]
    assert clients.sagemaker.describe_model_package(ModelPackageName=arn)["ModelApprovalStatus"] == "Approved"


COMPARE = ["FindApproved", "HasApproved", "DescribeApproved", "HasApprovedRelease", "ReadApprovedEvaluation",
           "WithinApproved"]


def test_model_that_beats_the_approved_version_is_registered(executing):
    approve(executing, 1.5)
    put_evaluation(executing, 1.2)
    arn, description = execute(executing, compare_with_approved=True)
    assert state_path(executing, arn) == [*HAPPY_PATH[:-1], *COMPARE, "Register"]
    assert len(packages(executing)) == 2
    assert gate_result(json.loads(description["output"])).summary == ("RMSE 1.200 < linear baseline 2.400, < training "
                                                                      "mean 3.300, <= threshold 2.100, <= 1.550 allowed "
                                                                      "by the latest approved 1.500: PASS")


def test_model_worse_than_the_approved_version_is_not_registered(executing):
    approve(executing, 1.5)
    put_evaluation(executing, 1.8)
    with pytest.raises(WorkflowFailed) as failed:
        execute(executing, compare_with_approved=True)
    assert state_path(executing, failed.value.arn) == [*HAPPY_PATH[:-1], *COMPARE, "WorseThanApproved"]
    assert "RMSE 1.8 is worse than the approved version" in str(failed.value)
    assert len(packages(executing)) == 1


def test_first_model_of_a_group_is_registered_without_comparison(executing):
    put_evaluation(executing, 1.8)
    arn, _ = execute(executing, compare_with_approved=True)
    assert state_path(executing, arn) == [*HAPPY_PATH[:-1], "FindApproved", "HasApproved", "Register"]


def test_approved_version_registered_by_hand_does_not_block(executing):
    approve(executing, None)
    put_evaluation(executing, 1.8)
    arn, _ = execute(executing, compare_with_approved=True)
    assert state_path(executing, arn) == [*HAPPY_PATH[:-1], *COMPARE[:4], "Register"]


def test_rerun_of_a_release_attaches_to_its_execution(executing, monkeypatch):
    put_evaluation(executing, 1.9)
    monkeypatch.setattr(ml_workflow, "definition", lambda *a, **kw: without_sync(definition(*a, **kw)))
    first = ml_workflow.run_release(config(), workflow_role_arn=ROLE_ARN, clients=executing, policy=FAST)
    second = ml_workflow.run_release(config(), clients=executing, policy=FAST)
    assert first["executionArn"] == second["executionArn"]
    assert second["result"]["model_package"]["arn"].endswith("/1")
    executions = executing.stepfunctions.list_executions(stateMachineArn=first["stateMachineArn"])["executions"]
    assert len(executions) == 1 and len(packages(executing)) == 1


# --- bin/run_workflow.py -----------------------------------------------------------------------------------

ROOT = Path(__file__).resolve().parents[1]


def load_script():
    spec = importlib.util.spec_from_file_location("run_workflow", ROOT / "bin" / "run_workflow.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_print_definition_prints_the_asl_and_needs_no_aws():
    env = {"PATH": os.environ["PATH"], "ROLE_ARN": ROLE_ARN}
    done = subprocess.run([sys.executable, "bin/run_workflow.py", "--print-definition"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == definition(ROLE_ARN)


def test_script_runs_the_release_and_writes_the_summary(executing, monkeypatch, tmp_path):
    monkeypatch.setattr(ml_workflow, "definition", lambda *a, **kw: without_sync(definition(*a, **kw)))
    monkeypatch.setattr(ml_workflow, "DEFAULT_POLICY", FAST)
    script = load_script()
    put_evaluation(executing, 2.0)
    argv = ["--model-name", MODEL, "--bucket-name", BUCKET, "--role-arn", ROLE_ARN, "--image-uri", IMAGE_URI,
            "--execution-id", EXECUTION, "--workflow-role-arn", ROLE_ARN, "--model-package-group", "abalone-v2",
            "--summary-file", str(tmp_path / "summary.txt")]
    assert script.main(argv) == 0
    assert (tmp_path / "summary.txt").read_text() == "RMSE 2.000 < linear baseline 2.400, < training mean 3.300: PASS\n"
    [package] = executing.sagemaker.list_model_packages(ModelPackageGroupName="abalone-v2")["ModelPackageSummaryList"]
    assert script.main(argv) == 0  # the re-run attaches: still one version
    assert len(executing.sagemaker.list_model_packages(ModelPackageGroupName="abalone-v2")[
        "ModelPackageSummaryList"]) == 1


def test_role_policy_allows_every_call_of_the_definition():
    policy = ml_workflow.workflow_role_policy(bucket=BUCKET, model=MODEL, sagemaker_role_arn=ROLE_ARN,
                                              region=REGION, account="123456789012")
    allowed = {a for s in policy["Statement"] for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])}
    for state in definition(ROLE_ARN, compare_with_approved=True)["States"].values():
        if state["Type"] == "Task":
            service, action = state["Resource"].split(":")[-2:]
            action = action.removesuffix(".sync")
            assert f"{service}:{action[0].upper()}{action[1:]}" in allowed, state["Resource"]
    assert "iam:PassRole" in allowed and "events:PutRule" in allowed
