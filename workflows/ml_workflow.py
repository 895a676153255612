"""The ML release as a Step Functions state machine, without Lambda.

Preprocess -> Train -> Evaluate run as SageMaker ``.sync`` integrations; ``evaluation.json`` is read
with the S3 SDK integration and parsed by ``States.StringToJson``; a Choice applies the quality gate of
``mlops_core.gate`` (beat the evaluation's baselines, an absolute threshold only when the input has one); the
model package is registered with the SageMaker SDK integration, by default only when the RMSE stays within
the latest approved version's successor limit. Every task retries throttling and transient errors with backoff,
and a failure is caught into a Fail state named after the step, whose cause names the step.

Everything that differs between releases comes from the execution input (see ``workflow_input``), so
one definition serves every release and two runs never collide. The container contract and S3 layout
are the pipeline's: ``s3://{bucket}/{model}/data/current/`` in, ``s3://{bucket}/{model}/{E}/...`` out.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from mlops_core.aws import Clients, resolve
from mlops_core.config import Config
from mlops_core.ensure import Ensured
from mlops_core.gate import GateResult, evaluation_of, judge
from mlops_core.logs import get_logger
from mlops_core.naming import resource_name
from mlops_core.polling import DEFAULT_POLICY, WaitPolicy
from mlops_core.project.names import state_machine_name
from mlops_core.project.policies import Scope, stepfunctions_policy
from mlops_core.project.release import TRAIN, Compute, Release, release_images
from mlops_core.s3 import parse_s3_uri
from mlops_core.sagemaker.registry import APPROVED, CONTENT_TYPES, PENDING
from mlops_core.stepfunctions import (
    ensure_state_machine,
    execution_name,
    execution_output,
    start_execution,
    wait_execution,
)

SAGEMAKER = "arn:aws:states:::sagemaker:"
SDK = "arn:aws:states:::aws-sdk:"
STEPS = {"preprocess": "Preprocess", "train": "Train", "evaluate": "Evaluate"}

# Create calls of the optimised SageMaker integration fail as SageMaker.AmazonSageMakerException
# (throttling, capacity); a failed job is States.TaskFailed and is not retried (its name is taken).
JOB_RETRY = {"ErrorEquals": ["SageMaker.AmazonSageMakerException", "ThrottlingException"],
             "IntervalSeconds": 10, "MaxAttempts": 5, "BackoffRate": 2.0, "MaxDelaySeconds": 300,
             "JitterStrategy": "FULL"}
# SDK integrations name errors Service.ErrorException; these reads and the idempotent register retry.
SDK_RETRY = {"ErrorEquals": ["SageMaker.ThrottlingException", "SageMaker.InternalFailureException",
                             "S3.SlowDownException", "S3.InternalErrorException", "ThrottlingException",
                             "States.Timeout"],
             "IntervalSeconds": 2, "MaxAttempts": 6, "BackoffRate": 2.0, "MaxDelaySeconds": 60,
             "JitterStrategy": "FULL"}
SDK_TIMEOUT_SECONDS = 60


def _format(template: str, *paths: str) -> str:
    """An intrinsic ``States.Format`` call filling the ``{}`` of ``template`` from input paths."""
    return f"States.Format('{template}', {', '.join(paths)})"


# Job requests are built by mlops_core.project.release (as bin/build.py does) for a release whose
# names are these tokens; each string holding tokens then reads them from the execution input.
_BUCKET, _MODEL, _EXECUTION, _IMAGE, _INSTANCE = "bucket0token", "MODEL0TOKEN", "EXEC0TOKEN", "IMAGE0TOKEN", "ml.x.x"
_TEMPLATE = Release(_BUCKET, _MODEL, _EXECUTION)
_TOKENS = {**{_TEMPLATE.job(step): f"$.jobs.{key}" for key, step in STEPS.items()},
           _BUCKET: "$.bucket", _MODEL: "$.model", _EXECUTION: "$.execution_id", _IMAGE: "$.image_uri",
           _INSTANCE: "$.instance_type"}
_TOKEN = re.compile("|".join(re.escape(t) for t in sorted(_TOKENS, key=len, reverse=True)))


def _expression(text: str) -> str:
    """A JSONPath (the whole string is one token) or a States.Format call rebuilding ``text``."""
    paths = [_TOKENS[m] for m in _TOKEN.findall(text)]
    if len(paths) == 1 and text in _TOKENS:
        return paths[0]
    template = _TOKEN.sub("{}", re.sub(r"([\\'{}])", r"\\\1", text))
    return _format(template, *paths)


def _parameters(value: Any) -> Any:
    """A boto3 request as ASL Parameters: fields whose strings hold tokens become ``Field.$`` expressions."""
    if isinstance(value, list):
        return [_parameters(v) for v in value]
    if not isinstance(value, dict):
        return value
    parameters = {}
    for key, item in value.items():
        if isinstance(item, str) and _TOKEN.search(item):
            parameters[f"{key}.$"] = _expression(item)
        else:
            parameters[key] = _parameters(item)
    return parameters


def _job_parameters(spec: Any) -> dict:
    """ASL Parameters of a job spec of the template release; hyperparameters come whole from the input."""
    parameters = _parameters(spec.request())
    if "HyperParameters" in parameters:
        del parameters["HyperParameters"]
        parameters["HyperParameters.$"] = "$.hyperparameters"
    return parameters


_ARTIFACT = _TEMPLATE.uri("model", _TEMPLATE.job(TRAIN), "output", "model.tar.gz")
MODEL_ARTIFACT = _expression(_ARTIFACT)
RMSE = "$.evaluation.metrics.regression_metrics.rmse.value"
LINEAR = "$.evaluation.metrics.baselines.linear.rmse"
MEAN = "$.evaluation.metrics.baselines.training_mean.rmse"


def _register() -> dict:
    """CreateModelPackage parameters, marked like mlops_core.sagemaker.registry marks a release's version."""
    return {
        "ModelPackageGroupName.$": "$.model_package_group",
        "ModelPackageDescription.$": _format("{} model [release {}]", "$.model", "$.execution_id"),
        "ModelApprovalStatus": PENDING,
        "ClientToken.$": "$.register_token",
        "InferenceSpecification": {
            "Containers": [{"Image.$": "$.inference_image_uri", "ModelDataUrl.$": MODEL_ARTIFACT}],
            "SupportedContentTypes": list(CONTENT_TYPES), "SupportedResponseMIMETypes": list(CONTENT_TYPES),
            "SupportedRealtimeInferenceInstanceTypes.$": "States.Array($.instance_type)"},
        "ModelMetrics": {"ModelQuality": {"Statistics": {
            "ContentType": "application/json", "S3Uri.$": _expression(_TEMPLATE.evaluation)}}},
        "MetadataProperties": {"GeneratedBy.$": "$.execution_id"},
        "CustomerMetadataProperties": {"ExecutionId.$": "$.execution_id", "rmse.$": _format("{}", RMSE)},
    }


class _Builder:
    """Collects states; every task gets its retry and a Catch into a Fail state named after it."""

    def __init__(self) -> None:
        self.states: dict[str, dict] = {}

    def task(self, name: str, resource: str, parameters: dict, next_state: str | None, *, result_path: str,
             result_selector: dict | None = None, retry: dict = SDK_RETRY) -> None:
        state: dict[str, Any] = {"Type": "Task", "Resource": resource, "Parameters": parameters}
        if resource.startswith(SDK):
            state["TimeoutSeconds"] = SDK_TIMEOUT_SECONDS
        if result_selector:
            state["ResultSelector"] = result_selector
        state["ResultPath"] = result_path
        state["Retry"] = [retry]
        state["Catch"] = [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.failure", "Next": f"{name}Failed"}]
        state.update({"Next": next_state} if next_state else {"End": True})
        self.states[name] = state
        self.fail(f"{name}Failed", _format(f"step {name} failed: {{}}: {{}}", "$.failure.Error", "$.failure.Cause"))

    def fail(self, name: str, cause_path: str) -> None:
        self.states[name] = {"Type": "Fail", "Error": name, "CausePath": cause_path}

    def choice_present(self, name: str, path: str, present: str, absent: str) -> None:
        self.states[name] = {"Type": "Choice", "Choices": [{"Variable": path, "IsPresent": True, "Next": present}],
                             "Default": absent}

    def read_evaluation(self, name: str, key: str, next_state: str, result_path: str) -> None:
        """Read an evaluation.json of this bucket (``key`` an expression) and parse it, without Lambda."""
        self.task(name, SDK + "s3:getObject", {"Bucket.$": "$.bucket", "Key.$": key}, next_state,
                  result_selector={"metrics.$": "States.StringToJson($.Body)"}, result_path=result_path)


def definition(role_arn: str, *, compare_with_approved: bool = True, compute: Compute | None = None) -> dict:
    """The Amazon States Language definition of the release, as plain Python data.

    ``role_arn`` is the SageMaker execution role of the jobs (the state machine's role must be allowed
    to pass it, see ``workflow_role_policy``); ``compute`` sizes the jobs (its instance type is read
    from the input). With ``compare_with_approved`` a model that passes the threshold is registered
    only when its RMSE is below that of the latest approved version of the group, read from that
    release's evaluation.json; no approved version (or one not registered by a release) does not block.
    """
    compute = replace(compute or Compute(), instance_type=_INSTANCE)
    b = _Builder()
    jobs = (("Preprocess", "createProcessingJob", _TEMPLATE.preprocess_spec(_IMAGE, role_arn, compute), "Train"),
            ("Train", "createTrainingJob", _TEMPLATE.train_spec(_IMAGE, role_arn, compute), "Evaluate"),
            ("Evaluate", "createProcessingJob",
             _TEMPLATE.evaluate_spec(_IMAGE, role_arn, _ARTIFACT, compute), "ReadEvaluation"))
    for step, action, spec, next_state in jobs:
        b.task(step, f"{SAGEMAKER}{action}.sync", _job_parameters(spec), next_state, retry=JOB_RETRY,
               result_selector={"arn.$": f"$.{spec.kind.arn_key}"}, result_path=f"$.{step.lower()}_job")
    b.read_evaluation("ReadEvaluation", _expression(parse_s3_uri(_TEMPLATE.evaluation)[1]), "CheckQuality",
                      "$.evaluation")
    passed = "FindApproved" if compare_with_approved else "Register"
    within_threshold = {"Or": [{"Variable": "$.threshold", "IsNull": True},
                               {"Variable": RMSE, "NumericLessThanEqualsPath": "$.threshold"}]}
    b.states["CheckQuality"] = {"Type": "Choice", "Choices": [{"And": [
        {"Variable": RMSE, "NumericLessThanPath": LINEAR}, {"Variable": RMSE, "NumericLessThanPath": MEAN},
        within_threshold], "Next": passed}], "Default": "QualityGateFailed"}
    b.fail("QualityGateFailed", _format("RMSE {} does not beat the baselines (linear {}, training mean {}) or the "
                                        "threshold {}", RMSE, LINEAR, MEAN, "$.threshold"))
    if compare_with_approved:
        _compare_with_approved(b)
    b.task("Register", SDK + "sagemaker:createModelPackage", _register(), None,
           result_selector={"arn.$": "$.ModelPackageArn"}, result_path="$.model_package")
    return {"Comment": "ML release: preprocess, train, evaluate, quality gate, register (no Lambda)",
            "StartAt": "Preprocess", "States": b.states}


def _compare_with_approved(b: _Builder) -> None:
    """FindApproved -> DescribeApproved -> ReadApprovedEvaluation -> WithinApproved."""
    b.task("FindApproved", SDK + "sagemaker:listModelPackages", {
        "ModelPackageGroupName.$": "$.model_package_group", "ModelApprovalStatus": APPROVED,
        "SortBy": "CreationTime", "SortOrder": "Descending", "MaxResults": 1},
        "HasApproved", result_selector={"arns.$": "$.ModelPackageSummaryList[*].ModelPackageArn"},
        result_path="$.approved")
    b.choice_present("HasApproved", "$.approved.arns[0]", "DescribeApproved", "Register")
    b.task("DescribeApproved", SDK + "sagemaker:describeModelPackage",
           {"ModelPackageName.$": "$.approved.arns[0]"}, "HasApprovedRelease", result_path="$.approved.described")
    release = "$.approved.described.CustomerMetadataProperties.ExecutionId"
    b.choice_present("HasApprovedRelease", release, "ReadApprovedEvaluation", "Register")
    b.read_evaluation("ReadApprovedEvaluation", _format("{}/{}/evaluation/evaluation.json", "$.model", release),
                      "WithinApproved", "$.approved.evaluation")
    limit = "$.approved.evaluation.metrics.successor_limit.rmse"
    approved_rmse = "$.approved.evaluation.metrics.regression_metrics.rmse.value"
    b.states["WithinApproved"] = {"Type": "Choice", "Choices": [
        {"And": [{"Variable": limit, "IsPresent": True}, {"Variable": RMSE, "NumericLessThanEqualsPath": limit}],
         "Next": "Register"},
        {"And": [{"Variable": limit, "IsPresent": False},  # an older evaluation: no worse than it
                 {"Variable": RMSE, "NumericLessThanEqualsPath": approved_rmse}], "Next": "Register"}],
        "Default": "WorseThanApproved"}
    b.fail("WorseThanApproved", _format("RMSE {} is worse than the approved version {} allows (its RMSE {})",
                                        RMSE, "$.approved.arns[0]", approved_rmse))


def without_sync(asl: dict) -> dict:
    """``asl`` with the ``.sync`` job resources replaced by their start-only forms.

    Only for moto's Step Functions interpreter, which cannot wait on SageMaker jobs (its jobs are
    Completed on creation); on AWS the workflow needs ``.sync`` to wait for each job.
    """
    return json.loads(json.dumps(asl).replace('.sync"', '"'))


def workflow_input(cfg: Config) -> dict:
    """The execution input of release ``cfg.execution_id``: the names, paths and settings the definition reads."""
    release = Release(cfg.bucket_name, cfg.model_name, cfg.execution_id)
    images = release_images(cfg.image_uri, cfg.execution_id)
    return {
        "model": cfg.model_name, "execution_id": cfg.execution_id, "bucket": cfg.bucket_name,
        "image_uri": images.training, "inference_image_uri": images.inference, "threshold": cfg.threshold, "instance_type": cfg.instance_type,
        "hyperparameters": {"epochs": str(cfg.epochs), "batch_size": str(cfg.batch_size)},
        "jobs": {key: release.job(step) for key, step in STEPS.items()},
        "model_package_group": cfg.model_package_group or cfg.model_name,
        "register_token": resource_name(cfg.model_name, cfg.execution_id, max_length=36),
    }


def ensure_ml_workflow(model: str, sagemaker_role_arn: str, workflow_role_arn: str | None, *,
                       compare_with_approved: bool = True, tags: Mapping[str, str] | None = None,
                       dry_run: bool = False, clients: Clients | None = None) -> Ensured:
    """Create or update the state machine ``{model}-ml-workflow`` (for bootstrap and run_workflow).

    ``workflow_role_arn`` is the role Step Functions assumes (policy: ``workflow_role_policy``); None
    keeps the role of an existing state machine. ``tags`` are added on creation; ``dry_run`` only plans.
    """
    asl = definition(sagemaker_role_arn, compare_with_approved=compare_with_approved)
    return ensure_state_machine(state_machine_name(model), asl, workflow_role_arn, clients=clients,
                                tags={"model": model, **(tags or {})}, dry_run=dry_run)


def run_release(cfg: Config, *, workflow_role_arn: str | None = None, compare_with_approved: bool = True,
                wait: bool = True, policy: WaitPolicy | None = None, clients: Clients | None = None) -> dict:
    """Ensure the state machine, start (or attach to) this release's execution and wait for it.

    Returns the execution description (``output`` parsed into ``result``); raises WorkflowFailed
    naming the failed state.
    """
    clients = resolve(clients)
    machine = ensure_ml_workflow(cfg.model_name, cfg.role_arn, workflow_role_arn,
                                 compare_with_approved=compare_with_approved, clients=clients)
    arn = start_execution(machine.arn, execution_name(cfg.execution_id), workflow_input(cfg), clients=clients)
    if not wait:
        return {"executionArn": arn, "status": "RUNNING"}
    description = wait_execution(arn, clients=clients, policy=policy or DEFAULT_POLICY)
    description["result"] = execution_output(description)
    get_logger("ml_workflow").info("release_registered", execution=arn,
                                   model_package=(description["result"] or {}).get("model_package"))
    return description


def gate_result(output: dict) -> GateResult:
    """The quality gate's verdict on the numbers the execution's output records (for the summary line)."""
    release = Release(output["bucket"], output["model"], output["execution_id"])
    approved = (output.get("approved") or {}).get("evaluation")
    return judge(evaluation_of(release.evaluation, output["evaluation"]["metrics"]), threshold=output["threshold"],
                 approved=evaluation_of(approved_evaluation_uri(output), approved["metrics"]) if approved else None,
                 approved_version=output["approved"]["arns"][0] if approved else None)


def approved_evaluation_uri(output: dict) -> str:
    execution = output["approved"]["described"]["CustomerMetadataProperties"]["ExecutionId"]
    return Release(output["bucket"], output["model"], execution).evaluation


def workflow_role_policy(*, bucket: str, model: str, sagemaker_role_arn: str, region: str, account: str,
                         partition: str = "aws", model_package_group: str | None = None,
                         kms_key_arn: str | None = None) -> dict:
    """The IAM policy the state machine's role needs (least privilege; trust ``states.amazonaws.com``).

    The same policy bootstrap gives a project's Step Functions role (``mlops_core.project.policies.stepfunctions_policy``).
    """
    return stepfunctions_policy(Scope(partition, region, account, bucket, model, model_package_group or model,
                                      sagemaker_role_arn, kms_key_arn))
