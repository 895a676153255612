"""SageMaker Model Monitor in plain boto3: baselines, job definitions, schedules, executions, violations and
ground truth, in Model Monitor's own formats and S3 layout (so the readers work the same on AWS and locally).

- ``start_baseline_job``: the AWS analyzer as a processing job over a dataset -> ``statistics.json`` and
  ``constraints.json`` (data quality), or regression metrics and their constraints (model quality);
- ``ensure_monitoring_schedule``: the job definition (immutable on AWS, so named by a hash of its content) and
  the schedule on an endpoint, created, pointed at a changed definition, or left alone;
- ``latest_executions`` / ``read_violations``: what the schedule's executions found;
- ``upload_ground_truth``: labels keyed by the capture's inference id under ``.../yyyy/mm/dd/hh/``.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from mlops_core.aws import Clients, partition_of, resolve
from mlops_core.ensure import (
    Action,
    Ensured,
    contains,
    definition_hash,
    delete_tolerant,
    describe_or_none,
    result,
    tag_list,
)
from mlops_core.errors import AwsResourceError, ConfigError
from mlops_core.naming import resource_name
from mlops_core.polling import DEFAULT_POLICY, MONITORING_EXECUTION, Clock, WaitPolicy, wait_for
from mlops_core.s3 import parse_s3_uri, read_json_if_exists, s3_uri
from mlops_core.sagemaker.jobs import ProcessingInput, ProcessingJobSpec, ProcessingOutput, start_job

# The AWS accounts that publish the sagemaker-model-monitor-analyzer image, per region. Source: the SageMaker
# Python SDK, src/sagemaker/image_uri_config/model-monitor.json ("Amazon SageMaker Model Monitor prebuilt
# container" in the SageMaker Developer Guide lists the same registry paths).
ANALYZER_ACCOUNTS = {
    "eu-north-1": "895015795356", "me-south-1": "607024016150", "ap-south-1": "126357580389",
    "us-east-2": "777275614652", "eu-west-1": "468650794304", "eu-central-1": "048819808253",
    "sa-east-1": "539772159869", "ap-east-1": "001633400207", "us-east-1": "156813124566",
    "ap-northeast-2": "709848358524", "eu-west-2": "749857270468", "eu-west-3": "680080141114",
    "ap-northeast-1": "574779866223", "us-west-2": "159807026194", "us-west-1": "890145073186",
    "ap-southeast-1": "245545462676", "ap-southeast-2": "563025443158", "ca-central-1": "536280801234",
    "cn-north-1": "453000072557", "cn-northwest-1": "453252182341",
}
ANALYZER_REPOSITORY = "sagemaker-model-monitor-analyzer"
DATA_QUALITY, MODEL_QUALITY = "DataQuality", "ModelQuality"
# where the analyzer publishes its metrics for an endpoint's schedules (dimensions Endpoint, MonitoringSchedule)
DATA_METRICS_NAMESPACE = "/aws/sagemaker/Endpoints/data-metric"
MODEL_METRICS_NAMESPACE = "/aws/sagemaker/Endpoints/model-metrics"
HOURLY = "cron(0 * ? * * *)"
ENDPOINT_PATH = "/opt/ml/processing/input/endpoint"
BASELINE_INPUT_PATH = "/opt/ml/processing/input/baseline_dataset_input"
OUTPUT_PATH = "/opt/ml/processing/output"
GROUND_TRUTH_PATH = "/opt/ml/processing/groundtruth"
VIOLATION_STATUS = "CompletedWithViolations"
KIND = "monitoring schedule"


def analyzer_image_uri(region: str) -> str:
    """The AWS-managed Model Monitor analyzer image of ``region`` (ConfigError for a region without one)."""
    account = ANALYZER_ACCOUNTS.get(region)
    if account is None:
        raise ConfigError(f"no Model Monitor analyzer image is known for region {region} "
                          f"(known: {', '.join(sorted(ANALYZER_ACCOUNTS))})")
    suffix = ".cn" if partition_of(region) == "aws-cn" else ""
    return f"{account}.dkr.ecr.{region}.amazonaws.com{suffix}/{ANALYZER_REPOSITORY}"


def is_analyzer_image(image_uri: str) -> bool:
    """True for the AWS-managed analyzer image of any region (what the embedded AWS runs locally)."""
    return image_uri.split("@")[0].split(":")[0].endswith("/" + ANALYZER_REPOSITORY)


@dataclass(frozen=True)
class ModelQualityProblem:
    """How the analyzer finds predictions and labels: ``inference_attribute`` locates the prediction in the
    endpoint's output (a JSONPath for JSON, a column index for CSV), ``ground_truth_attribute`` the label in a
    baseline dataset."""

    problem_type: str = "Regression"
    inference_attribute: str = "predictions[0].rings"
    ground_truth_attribute: str = "label"
    baseline_inference_attribute: str = "prediction"

    def environment(self) -> dict[str, str]:
        return {"analysis_type": "MODEL_QUALITY", "problem_type": self.problem_type,
                "inference_attribute": self.baseline_inference_attribute,
                "ground_truth_attribute": self.ground_truth_attribute}


@dataclass(frozen=True, kw_only=True)
class BaselineSpec:
    """A baseline job: the analyzer over ``dataset_s3_uri`` (CSV with a header), results to ``output_s3_uri``.
    With ``model_quality`` the dataset holds predictions and labels and the job baselines regression metrics."""

    name: str
    role_arn: str
    region: str
    dataset_s3_uri: str
    output_s3_uri: str
    model_quality: ModelQualityProblem | None = None
    instance_type: str = "ml.m5.xlarge"
    tags: Mapping[str, str] = field(default_factory=dict)

    def job(self) -> ProcessingJobSpec:
        """The processing job AWS's SDK would start for this baseline (same image, inputs and environment)."""
        environment = {"dataset_format": json.dumps({"csv": {"header": True, "output_columns_position": "START"}}),
                       "dataset_source": BASELINE_INPUT_PATH, "output_path": OUTPUT_PATH,
                       "publish_cloudwatch_metrics": "Disabled",
                       **(self.model_quality.environment() if self.model_quality else {})}
        return ProcessingJobSpec(
            name=self.name, image_uri=analyzer_image_uri(self.region), role_arn=self.role_arn,
            instance_type=self.instance_type, volume_size_gb=20, environment=environment, tags=self.tags,
            inputs=(ProcessingInput("baseline_dataset_input", self.dataset_s3_uri, BASELINE_INPUT_PATH),),
            outputs=(ProcessingOutput("monitoring_output", self.output_s3_uri, OUTPUT_PATH),))


def start_baseline_job(spec: BaselineSpec, *, clients: Clients | None = None, retry_failed: bool = False) -> Ensured:
    """Start the baseline job (idempotent: an existing job of that name is attached to, see ``start_job``)."""
    return start_job(spec.job(), clients=clients, retry_failed=retry_failed)


@dataclass(frozen=True, kw_only=True)
class MonitorSpec:
    """A monitoring schedule of ``monitoring_type`` on ``endpoint`` against a baseline in ``baseline_s3_uri``
    (``constraints.json``, ``statistics.json``), reports to ``output_s3_uri``; model quality also reads the
    ground truth under ``ground_truth_s3_uri``."""

    schedule_name: str
    monitoring_type: str
    endpoint: str
    role_arn: str
    region: str
    baseline_s3_uri: str
    output_s3_uri: str
    ground_truth_s3_uri: str | None = None
    problem: ModelQualityProblem = ModelQualityProblem()
    schedule_expression: str = HOURLY
    instance_type: str = "ml.m5.xlarge"
    max_runtime_s: int = 1800
    publish_metrics: bool = True
    tags: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.monitoring_type not in (DATA_QUALITY, MODEL_QUALITY):
            raise ConfigError(f"monitoring schedule {self.schedule_name}: monitoring_type must be {DATA_QUALITY} "
                              f"or {MODEL_QUALITY}, not {self.monitoring_type!r}")
        if self.monitoring_type == MODEL_QUALITY and not self.ground_truth_s3_uri:
            raise ConfigError(f"monitoring schedule {self.schedule_name}: model quality needs ground_truth_s3_uri")

    def definition(self) -> dict[str, Any]:
        """The Create{DataQuality,ModelQuality}JobDefinition request without its name and tags."""
        endpoint_input: dict[str, Any] = {"EndpointName": self.endpoint, "LocalPath": ENDPOINT_PATH,
                                          "S3InputMode": "File", "S3DataDistributionType": "FullyReplicated"}
        environment = {"publish_cloudwatch_metrics": "Enabled" if self.publish_metrics else "Disabled"}
        common = {"JobResources": {"ClusterConfig": {"InstanceCount": 1, "InstanceType": self.instance_type,
                                                     "VolumeSizeInGB": 20}},
                  "RoleArn": self.role_arn, "StoppingCondition": {"MaxRuntimeInSeconds": self.max_runtime_s}}
        output = {"MonitoringOutputs": [{"S3Output": {"S3Uri": self.output_s3_uri, "LocalPath": OUTPUT_PATH,
                                                      "S3UploadMode": "EndOfJob"}}]}
        constraints = {"ConstraintsResource": {"S3Uri": f"{self.baseline_s3_uri.rstrip('/')}/constraints.json"}}
        if self.monitoring_type == DATA_QUALITY:
            return {"DataQualityBaselineConfig": {**constraints, "StatisticsResource": {
                        "S3Uri": f"{self.baseline_s3_uri.rstrip('/')}/statistics.json"}},
                    "DataQualityAppSpecification": {"ImageUri": analyzer_image_uri(self.region),
                                                    "Environment": environment},
                    "DataQualityJobInput": {"EndpointInput": endpoint_input},
                    "DataQualityJobOutputConfig": output, **common}
        return {"ModelQualityBaselineConfig": constraints,
                "ModelQualityAppSpecification": {"ImageUri": analyzer_image_uri(self.region),
                                                 "ProblemType": self.problem.problem_type, "Environment": environment},
                "ModelQualityJobInput": {"EndpointInput": {**endpoint_input,
                                                           "InferenceAttribute": self.problem.inference_attribute},
                                         "GroundTruthS3Input": {"S3Uri": self.ground_truth_s3_uri}},
                "ModelQualityJobOutputConfig": output, **common}

    @property
    def definition_name(self) -> str:
        """Job definitions cannot be updated: each content gets its own name, ``{schedule}-{hash}``."""
        return resource_name(self.schedule_name, definition_hash(self.definition()))


OPERATIONS = {DATA_QUALITY: ("create_data_quality_job_definition", "describe_data_quality_job_definition",
                             "delete_data_quality_job_definition"),
              MODEL_QUALITY: ("create_model_quality_job_definition", "describe_model_quality_job_definition",
                              "delete_model_quality_job_definition")}


def describe_schedule(name: str, *, clients: Clients | None = None) -> dict | None:
    """The monitoring schedule's description, or None."""
    return describe_or_none(resolve(clients).sagemaker.describe_monitoring_schedule, MonitoringScheduleName=name)


def ensure_monitoring_schedule(spec: MonitorSpec, *, dry_run: bool = False, clients: Clients | None = None) -> Ensured:
    """Create the job definition and the schedule, or point the schedule at a changed definition (then the old
    definition is deleted) or a changed cron expression; a re-run with the same spec makes no mutating call."""
    clients = resolve(clients)
    sagemaker = clients.sagemaker
    create, describe, delete = (getattr(sagemaker, op) for op in OPERATIONS[spec.monitoring_type])
    definition_name = spec.definition_name
    if not dry_run and describe_or_none(describe, JobDefinitionName=definition_name) is None:
        create(JobDefinitionName=definition_name, **spec.definition(), **({"Tags": tag_list(spec.tags)} if spec.tags else {}))
    config = {"ScheduleConfig": {"ScheduleExpression": spec.schedule_expression},
              "MonitoringJobDefinitionName": definition_name, "MonitoringType": spec.monitoring_type}
    current = describe_schedule(spec.schedule_name, clients=clients)
    if current is None:
        arn = None if dry_run else sagemaker.create_monitoring_schedule(
            MonitoringScheduleName=spec.schedule_name, MonitoringScheduleConfig=config,
            **({"Tags": tag_list(spec.tags)} if spec.tags else {}))["MonitoringScheduleArn"]
        return result(KIND, spec.schedule_name, created=True, arn=arn, dry_run=dry_run, definition=definition_name)
    found = current["MonitoringScheduleConfig"]
    changes = [k for k in ("ScheduleConfig", "MonitoringJobDefinitionName") if not contains(found.get(k), config[k])]
    if changes and not dry_run:
        sagemaker.update_monitoring_schedule(MonitoringScheduleName=spec.schedule_name, MonitoringScheduleConfig=config)
        old = found.get("MonitoringJobDefinitionName")
        if old and old != definition_name:
            delete_tolerant("monitoring job definition", old, delete, JobDefinitionName=old)
    return result(KIND, spec.schedule_name, changes=changes, arn=current.get("MonitoringScheduleArn"),
                  dry_run=dry_run, definition=definition_name)


def delete_monitoring_schedule(name: str, *, clients: Clients | None = None) -> Ensured:
    """Delete the schedule and its job definition; ABSENT when there is no such schedule."""
    sagemaker = resolve(clients).sagemaker
    current = describe_schedule(name, clients=clients)
    if current is None:
        return Ensured(Action.ABSENT, KIND, name)
    sagemaker.delete_monitoring_schedule(MonitoringScheduleName=name)
    config = current["MonitoringScheduleConfig"]
    definition, kind = config.get("MonitoringJobDefinitionName"), config.get("MonitoringType", DATA_QUALITY)
    if definition:
        delete_tolerant("monitoring job definition", definition, getattr(sagemaker, OPERATIONS[kind][2]),
                        JobDefinitionName=definition)
    return Ensured(Action.DELETED, KIND, name)


@dataclass(frozen=True)
class Violation:
    """One broken constraint: the feature (or metric), the check and AWS's description."""

    feature: str
    check: str
    description: str


@dataclass(frozen=True)
class Execution:
    """One monitoring execution: its status, processing job, report folder and (when read) violations."""

    schedule: str
    status: str
    scheduled_time: dt.datetime | None
    processing_job: str | None
    failure_reason: str | None
    report_s3_uri: str | None
    violations: tuple[Violation, ...] = ()

    @property
    def has_violations(self) -> bool:
        return self.status == VIOLATION_STATUS or bool(self.violations)


def parse_violations(document: Mapping[str, Any]) -> list[Violation]:
    """The violations of a ``constraint_violations.json`` (data quality names a feature, model quality a metric)."""
    return [Violation(v.get("feature_name") or v.get("metric_name") or "", v.get("constraint_check_type", ""),
                      v.get("description", "")) for v in document.get("violations", [])]


def read_violations(report_s3_uri: str, *, clients: Clients | None = None) -> list[Violation]:
    """The violations in ``{report}/constraint_violations.json`` ([] when the execution wrote none)."""
    document = read_json_if_exists(f"{report_s3_uri.rstrip('/')}/constraint_violations.json", clients=clients)
    return parse_violations(document or {})


def _summaries(sagemaker: Any, schedule: str, count: int) -> list[dict]:
    return sagemaker.list_monitoring_executions(MonitoringScheduleName=schedule, SortBy="ScheduledTime",
                                                SortOrder="Descending", MaxResults=count)["MonitoringExecutionSummaries"]


def _execution(schedule: str, summary: Mapping[str, Any], with_violations: bool, clients: Clients) -> Execution:
    """An execution summary with its report folder (from its processing job) and, if asked, its violations."""
    job_arn = summary.get("ProcessingJobArn")
    job = job_arn.rsplit("/", 1)[-1] if job_arn else None
    report = None
    if job:
        outputs = clients.sagemaker.describe_processing_job(ProcessingJobName=job).get(
            "ProcessingOutputConfig", {}).get("Outputs", [])
        report = outputs[0]["S3Output"]["S3Uri"] if outputs else None
    violations = tuple(read_violations(report, clients=clients)) if report and with_violations else ()
    return Execution(schedule, summary["MonitoringExecutionStatus"], summary.get("ScheduledTime"), job,
                     summary.get("FailureReason"), report, violations)


def latest_executions(schedule: str, *, count: int = 5, with_violations: bool = True,
                      clients: Clients | None = None) -> list[Execution]:
    """The schedule's newest executions first, each with its report folder and (by default) its violations."""
    clients = resolve(clients)
    return [_execution(schedule, summary, with_violations, clients)
            for summary in _summaries(clients.sagemaker, schedule, count)]


def wait_latest_execution(schedule: str, *, clients: Clients | None = None, policy: WaitPolicy = DEFAULT_POLICY,
                          clock: Clock | None = None) -> Execution:
    """Wait until the schedule's newest execution ends; it, with its violations (JobFailed when it failed)."""
    clients = resolve(clients)
    poller = clients.poller("sagemaker")

    def newest() -> dict:
        return next(iter(_summaries(poller, schedule, 1)), {"MonitoringExecutionStatus": "Pending"})

    return _execution(schedule, wait_for(newest, MONITORING_EXECUTION, schedule, policy=policy, clock=clock), True,
                      clients)


def ground_truth_record(inference_id: str, label: Any) -> dict[str, Any]:
    """One ground-truth record in SageMaker's format, keyed by the capture's inference id."""
    return {"groundTruthData": {"data": str(label), "encoding": "CSV"},
            "eventMetadata": {"eventId": inference_id}, "eventVersion": "0"}


def upload_ground_truth(ground_truth_s3_uri: str, labels: Mapping[str, Any], *, when: dt.datetime | None = None,
                        clients: Clients | None = None) -> str:
    """Upload ``labels`` (inference id -> label) as one JSON-lines file under ``{uri}/yyyy/mm/dd/hh/``; its URI."""
    if not labels:
        raise ValueError("no ground-truth labels to upload")
    when = (when or dt.datetime.now(dt.timezone.utc)).astimezone(dt.timezone.utc)
    bucket, prefix = parse_s3_uri(ground_truth_s3_uri)
    key = "/".join(p for p in (prefix.strip("/"), when.strftime("%Y/%m/%d/%H"), f"{uuid.uuid4()}.jsonl") if p)
    body = "".join(json.dumps(ground_truth_record(i, label)) + "\n" for i, label in labels.items())
    resolve(clients).s3.put_object(Bucket=bucket, Key=key, Body=body.encode())
    return s3_uri(bucket, key)


def require_baseline(baseline_s3_uri: str, monitoring_type: str, *, clients: Clients | None = None) -> None:
    """AwsResourceError naming what is missing when the baseline's files are not there (before a schedule)."""
    s3 = resolve(clients).s3
    bucket, prefix = parse_s3_uri(baseline_s3_uri)
    names = ("constraints.json", "statistics.json") if monitoring_type == DATA_QUALITY else ("constraints.json",)
    for name in names:
        key = f"{prefix.rstrip('/')}/{name}"
        try:
            s3.head_object(Bucket=bucket, Key=key)
        except s3.exceptions.ClientError as exc:
            raise AwsResourceError(s3_uri(bucket, key), "read", f"the baseline file is missing ({exc})",
                                   "run the baseline first (bin/monitor.py baseline)") from exc
