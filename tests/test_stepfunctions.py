"""mlops_core.stepfunctions: ensure/update, idempotent start, wait and failure from the history."""

from __future__ import annotations

import datetime as dt
import json

import boto3
import pytest
from botocore.stub import Stubber

from mlops_core.aws import Clients
from mlops_core.ensure import Action
from mlops_core.errors import ConfigError, WorkflowFailed
from mlops_core.polling import WaitPolicy
from mlops_core.stepfunctions import (
    delete_state_machine,
    ensure_state_machine,
    execution_failure,
    execution_name,
    start_execution,
    wait_execution,
)
from mlops_core.testing import VirtualClock
from tests.fakes import ROLE_ARN

PASS = {"StartAt": "Done", "States": {"Done": {"Type": "Pass", "End": True}}}
OTHER_ROLE = "arn:aws:iam::123456789012:role/other"
MACHINE = "arn:aws:states:us-east-1:123456789012:stateMachine:m"
EXECUTION = "arn:aws:states:us-east-1:123456789012:execution:m:release-1"
NOW = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)


def test_ensure_twice_creates_once_and_never_updates(aws, recorder):
    first = ensure_state_machine("m", PASS, ROLE_ARN, clients=aws)
    second = ensure_state_machine("m", json.dumps(PASS), ROLE_ARN, clients=aws)  # same JSON, other spelling
    assert (first.action, second.action) == (Action.CREATED, Action.UNCHANGED)
    assert first.arn == second.arn
    assert recorder.mutating == [("stepfunctions", "CreateStateMachine")]


def test_changed_definition_or_role_updates_once(aws, recorder):
    ensure_state_machine("m", PASS, ROLE_ARN, clients=aws)
    recorder.clear()
    changed = {"StartAt": "Done", "States": {"Done": {"Type": "Succeed"}}}
    updated = ensure_state_machine("m", changed, ROLE_ARN, clients=aws)
    assert updated.action == Action.UPDATED and updated.details["changes"] == ["definition"]
    assert recorder.mutating == [("stepfunctions", "UpdateStateMachine")]
    assert ensure_state_machine("m", changed, None, clients=aws).action == Action.UNCHANGED  # role kept
    role = ensure_state_machine("m", changed, OTHER_ROLE, clients=aws)
    assert role.details["changes"] == ["role"]
    assert aws.stepfunctions.describe_state_machine(stateMachineArn=role.arn)["roleArn"] == OTHER_ROLE


def test_new_state_machine_needs_a_role(aws):
    with pytest.raises(ConfigError, match="m does not exist yet"):
        ensure_state_machine("m", PASS, None, clients=aws)


def test_delete_tolerates_absent(aws):
    ensure_state_machine("m", PASS, ROLE_ARN, clients=aws)
    assert delete_state_machine("m", clients=aws).action == Action.DELETED
    assert delete_state_machine("m", clients=aws).action == Action.ABSENT


def test_execution_name_is_deterministic_and_valid():
    assert execution_name("0f1e2d3c-aaaa") == "0f1e2d3c-aaaa"
    long = execution_name("x" * 100, "y")
    assert long == execution_name("x" * 100, "y") and len(long) <= 80


def stubbed() -> tuple[Clients, Stubber]:
    client = boto3.client("stepfunctions", region_name="us-east-1")
    return Clients(stepfunctions=client, region="us-east-1"), Stubber(client)


def describe(status: str, **extra) -> dict:
    return {"executionArn": EXECUTION, "stateMachineArn": MACHINE, "name": "release-1", "status": status,
            "startDate": NOW, **extra}


def test_rerun_attaches_to_the_existing_execution():
    clients, stub = stubbed()
    stub.add_client_error("start_execution", "ExecutionAlreadyExists", "Execution Already Exists")
    stub.add_response("describe_execution", describe("RUNNING", input='{"a": 1}'), {"executionArn": EXECUTION})
    with stub:
        assert start_execution(MACHINE, "release-1", {"a": 1}, clients=clients) == EXECUTION
    stub.assert_no_pending_responses()


def test_wait_polls_until_succeeded():
    clients, stub = stubbed()
    for status in ("RUNNING", "RUNNING", "SUCCEEDED"):
        stub.add_response("describe_execution", describe(status, output="{}"), {"executionArn": EXECUTION})
    clock = VirtualClock()
    with stub:
        assert wait_execution(EXECUTION, clients=clients, clock=clock)["status"] == "SUCCEEDED"
    assert len(clock.sleeps) == 2


def event(number: int, kind: str, **details) -> dict:
    key = {"TaskStateEntered": "stateEnteredEventDetails", "ChoiceStateEntered": "stateEnteredEventDetails",
           "FailStateEntered": "stateEnteredEventDetails", "TaskFailed": "taskFailedEventDetails",
           "TaskSucceeded": "taskSucceededEventDetails", "ExecutionFailed": "executionFailedEventDetails"}.get(kind)
    base = {"timestamp": NOW, "type": kind, "id": number}
    if kind.startswith("Task") and not kind.endswith("Entered"):
        details = {"resourceType": "sagemaker", "resource": "createTrainingJob.sync", **details}
    return {**base, key: details} if key and details else base


def history(*events: dict) -> dict:
    return {"events": [event(i + 1, *e[:1], **(e[1] if len(e) > 1 else {})) for i, e in enumerate(events)]}


def failure_for(events: dict):
    clients, stub = stubbed()
    stub.add_response("get_execution_history", events, {"executionArn": EXECUTION, "includeExecutionData": True})
    with stub:
        return execution_failure(EXECUTION, clients=clients)


def test_failure_names_the_task_that_failed_not_the_retried_one():
    failure = failure_for(history(
        ("ExecutionStarted",),
        ("TaskStateEntered", {"name": "Preprocess"}),
        ("TaskFailed", {"error": "SageMaker.AmazonSageMakerException", "cause": "Rate exceeded"}),
        ("TaskSucceeded",),
        ("TaskStateEntered", {"name": "Train"}),
        ("TaskFailed", {"error": "States.TaskFailed", "cause": "AlgorithmError: loss is NaN"}),
        ("FailStateEntered", {"name": "TrainFailed"}),
        ("ExecutionFailed", {"error": "TrainFailed", "cause": "step Train failed: AlgorithmError: loss is NaN"}),
    ))
    assert failure.state == "Train" and failure.error == "TrainFailed"
    assert str(failure) == "state Train failed: TrainFailed: step Train failed: AlgorithmError: loss is NaN"


def test_failure_of_a_choice_names_the_fail_state():
    failure = failure_for(history(
        ("TaskStateEntered", {"name": "Evaluate"}),
        ("TaskSucceeded",),
        ("ChoiceStateEntered", {"name": "CheckQuality"}),
        ("FailStateEntered", {"name": "QualityGateFailed"}),
        ("ExecutionFailed", {"error": "QualityGateFailed", "cause": "RMSE 2.5 is above the threshold 2.1"}),
    ))
    assert (failure.state, failure.cause) == ("QualityGateFailed", "RMSE 2.5 is above the threshold 2.1")


def test_wait_raises_with_the_failed_state_and_console_link():
    clients, stub = stubbed()
    stub.add_response("describe_execution", describe("FAILED", error="TrainFailed", cause="boom"),
                      {"executionArn": EXECUTION})
    stub.add_response("get_execution_history", history(
        ("TaskStateEntered", {"name": "Train"}), ("TaskFailed", {"error": "States.TaskFailed", "cause": "boom"}),
        ("ExecutionFailed", {"error": "TrainFailed", "cause": "boom"})),
        {"executionArn": EXECUTION, "includeExecutionData": True})
    with stub, pytest.raises(WorkflowFailed) as failed:
        wait_execution(EXECUTION, clients=clients, policy=WaitPolicy(timeout=5), clock=VirtualClock())
    assert failed.value.state == "Train" and failed.value.status == "FAILED"
    assert "state Train failed: TrainFailed: boom" in str(failed.value)
    assert "console.aws.amazon.com/states" in str(failed.value)
