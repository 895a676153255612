"""CodePipeline: ensure pipelines from plain structures, start and wait for executions, explain failures."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

from botocore.exceptions import ClientError

from mlops_core.aws import Clients, is_not_found, resolve
from mlops_core.ensure import Action, Ensured, contains, describe_or_none, result, retry_until_role_usable
from mlops_core.errors import AwsResourceError, ConfigError
from mlops_core.logs import get_logger
from mlops_core.polling import DEFAULT_POLICY, PIPELINE_EXECUTION, Clock, WaitPolicy, wait_for

KIND = "codepipeline pipeline"


def action(name: str, category: str, provider: str, configuration: dict, *, run_order: int = 1,
           inputs: tuple[str, ...] = (), outputs: tuple[str, ...] = (), namespace: str | None = None) -> dict:
    """One action of a pipeline stage (AWS-owned provider, version 1)."""
    declared = {"name": name, "actionTypeId": {"category": category, "owner": "AWS", "provider": provider,
                                               "version": "1"},
                "runOrder": run_order, "configuration": configuration}
    if inputs:
        declared["inputArtifacts"] = [{"name": n} for n in inputs]
    if outputs:
        declared["outputArtifacts"] = [{"name": n} for n in outputs]
    if namespace:
        declared["namespace"] = namespace
    return declared


def get_pipeline(name: str, *, clients: Clients | None = None) -> dict | None:
    """The pipeline structure, or None when there is no such pipeline."""
    found = describe_or_none(resolve(clients).codepipeline.get_pipeline, name=name)
    return found["pipeline"] if found else None


def ensure_pipeline(definition: dict, *, tags: Mapping[str, str] | None = None, dry_run: bool = False,
                    clients: Clients | None = None) -> Ensured:
    """Create the pipeline or update it when its current structure differs from ``definition``."""
    codepipeline = resolve(clients).codepipeline
    name = definition["name"]
    current = get_pipeline(name, clients=clients)
    if current is None:
        if not dry_run:
            retry_until_role_usable(lambda: codepipeline.create_pipeline(
                pipeline=definition, tags=[{"key": k, "value": v} for k, v in (tags or {}).items()]))
        return result(KIND, name, created=True, dry_run=dry_run)
    changes = [key for key, value in definition.items() if not contains(current.get(key), value)]
    if changes and not dry_run:
        retry_until_role_usable(lambda: codepipeline.update_pipeline(pipeline=definition))
    return result(KIND, name, changes=changes, dry_run=dry_run)


def delete_pipeline(name: str, *, clients: Clients | None = None) -> Ensured:
    if get_pipeline(name, clients=clients) is None:
        return Ensured(Action.ABSENT, KIND, name)
    resolve(clients).codepipeline.delete_pipeline(name=name)
    return Ensured(Action.DELETED, KIND, name)


def start_pipeline_execution(pipeline_name: str, *, clients: Clients | None = None,
                             client_request_token: str | None = None) -> str:
    """Start a release and return its execution id; the same ``client_request_token`` starts it once."""
    token = {"clientRequestToken": client_request_token} if client_request_token else {}
    try:
        execution_id = resolve(clients).codepipeline.start_pipeline_execution(
            name=pipeline_name, **token)["pipelineExecutionId"]
    except ClientError as exc:
        if is_not_found(exc):
            raise AwsResourceError(f"pipeline {pipeline_name}", "start", "the pipeline does not exist",
                                   "create it with bin/bootstrap.py") from exc
        raise
    get_logger("codepipeline").info("pipeline_started", pipeline=pipeline_name, execution_id=execution_id)
    return execution_id


def failed_actions(pipeline_name: str, execution_id: str, *, clients: Clients | None = None) -> list[dict]:
    """The failed actions of one execution (GetPipelineState): stage, action, message and log URL."""
    state = resolve(clients).codepipeline.get_pipeline_state(name=pipeline_name)
    failed = []
    for stage in state.get("stageStates", []):
        if stage.get("latestExecution", {}).get("pipelineExecutionId") != execution_id:
            continue
        for action in stage.get("actionStates", []):
            latest = action.get("latestExecution", {})
            if latest.get("status") == "Failed":
                failed.append({"stage": stage["stageName"], "action": action["actionName"],
                               "message": latest.get("errorDetails", {}).get("message") or latest.get("summary"),
                               "url": latest.get("externalExecutionUrl")})
    return failed


def _reason(description: dict) -> str | None:
    summary = description.get("pipelineExecution", {}).get("statusSummary")
    actions = [f"{a['stage']}/{a['action']}: {a['message'] or 'no message'}"
               for a in description.get("failedActions", [])]
    return "; ".join(p for p in [summary, *actions] if p) or None


def _logs(_name: str, description: dict) -> str | None:
    return ", ".join(a["url"] for a in description.get("failedActions", []) if a.get("url")) or None


EXECUTION = replace(PIPELINE_EXECUTION, reason=_reason, logs=_logs)


def wait_pipeline_execution(pipeline_name: str, execution_id: str, *, clients: Clients | None = None,
                            policy: WaitPolicy = DEFAULT_POLICY, clock: Clock | None = None) -> dict:
    """Wait until the execution succeeds; a failure names the failed actions, their messages and logs."""
    clients = resolve(clients)
    codepipeline = clients.poller("codepipeline")

    def describe() -> dict:
        description = codepipeline.get_pipeline_execution(pipelineName=pipeline_name,
                                                           pipelineExecutionId=execution_id)
        status = description["pipelineExecution"]["status"]
        if status in EXECUTION.failed or status in EXECUTION.stopped:
            description["failedActions"] = failed_actions(pipeline_name, execution_id, clients=clients)
        return description

    return wait_for(describe, EXECUTION, f"pipeline {pipeline_name} execution {execution_id}", policy=policy,
                    clock=clock)


def pipeline_execution_id(pipeline: str, build_id: str | None = None, *, clients: Clients | None = None) -> str:
    """The id of the execution of ``pipeline`` that runs CodeBuild build ``build_id`` (else the running one)."""
    stages = resolve(clients).codepipeline.get_pipeline_state(name=pipeline)["stageStates"]
    for stage in stages:
        execution = stage.get("latestExecution", {})
        actions = [a.get("latestExecution", {}).get("externalExecutionId") for a in stage.get("actionStates", [])]
        if build_id and build_id in actions and execution.get("pipelineExecutionId"):
            return execution["pipelineExecutionId"]
    running = [s["latestExecution"]["pipelineExecutionId"] for s in stages
               if s.get("latestExecution", {}).get("status") == "InProgress"]
    if running:
        return running[0]
    raise ConfigError(f"EXECUTION_ID is not set and pipeline {pipeline} has no running execution: "
                      "set EXECUTION_ID=#{codepipeline.PipelineExecutionId} in the CodePipeline action")
