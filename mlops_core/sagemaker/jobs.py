"""SageMaker processing and training jobs: typed specs, idempotent start, wait with the polling engine.

``start_job(spec)`` never starts a duplicate: when a job of that name exists it attaches to it
(InProgress), reuses it (Completed) or raises (Failed/Stopped) unless ``retry_failed=True``, which starts a
fresh attempt named ``{name}-r2`` (``-r3``, ...). A later re-run finds that newest attempt again. Every job
carries a hash of its definition (tag ``mlops:definition``): a job that runs something else (another
image, hyperparameters, inputs or resources) is never attached to or reused.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar

from botocore.exceptions import ClientError

from mlops_core.aws import Clients, resolve
from mlops_core.ensure import Action, Ensured, definition_hash, describe_or_none, is_already_exists, tag_list
from mlops_core.errors import AwsResourceError, JobFailed
from mlops_core.logs import get_logger
from mlops_core.naming import resource_name
from mlops_core.polling import (
    DEFAULT_POLICY,
    PROCESSING_JOB,
    TRAINING_JOB,
    Clock,
    StatusSpec,
    WaitPolicy,
    wait_for,
)

CREATE_RACE_ATTEMPTS = 3
DEFINITION_TAG = "mlops:definition"

log = get_logger("sagemaker")


@dataclass(frozen=True)
class JobKind:
    """How to describe and create one kind of SageMaker job, and where its logs go."""

    status: StatusSpec
    describe_op: str
    create_op: str
    name_key: str
    arn_key: str
    log_group: str

    def describe(self, sagemaker: Any, name: str) -> dict | None:
        """The job's description, or None when there is no such job."""
        return describe_or_none(getattr(sagemaker, self.describe_op), **{self.name_key: name})

    @property
    def ended_badly(self) -> frozenset[str]:
        return self.status.failed | self.status.stopped


PROCESSING = JobKind(PROCESSING_JOB, "describe_processing_job", "create_processing_job", "ProcessingJobName",
                     "ProcessingJobArn", "/aws/sagemaker/ProcessingJobs")
TRAINING = JobKind(TRAINING_JOB, "describe_training_job", "create_training_job", "TrainingJobName",
                   "TrainingJobArn", "/aws/sagemaker/TrainingJobs")


@dataclass(frozen=True)
class VpcConfig:
    subnets: tuple[str, ...]
    security_group_ids: tuple[str, ...]

    def request(self) -> dict:
        return {"Subnets": list(self.subnets), "SecurityGroupIds": list(self.security_group_ids)}


@dataclass(frozen=True)
class ProcessingInput:
    name: str
    s3_uri: str
    local_path: str
    distribution: str = "FullyReplicated"

    def request(self) -> dict:
        return {"InputName": self.name, "S3Input": {
            "S3Uri": self.s3_uri, "LocalPath": self.local_path, "S3DataType": "S3Prefix",
            "S3InputMode": "File", "S3DataDistributionType": self.distribution}}


@dataclass(frozen=True)
class ProcessingOutput:
    name: str
    s3_uri: str
    local_path: str
    upload_mode: str = "EndOfJob"

    def request(self) -> dict:
        return {"OutputName": self.name, "S3Output": {
            "S3Uri": self.s3_uri, "LocalPath": self.local_path, "S3UploadMode": self.upload_mode}}


@dataclass(frozen=True)
class Channel:
    name: str
    s3_uri: str
    content_type: str | None = None
    distribution: str = "FullyReplicated"

    def request(self) -> dict:
        channel = {"ChannelName": self.name, "InputMode": "File", "DataSource": {"S3DataSource": {
            "S3DataType": "S3Prefix", "S3Uri": self.s3_uri, "S3DataDistributionType": self.distribution}}}
        if self.content_type:
            channel["ContentType"] = self.content_type
        return channel


@dataclass(frozen=True, kw_only=True)
class JobSpec:
    """What processing and training jobs share: image, role, compute, limits, environment, security."""

    kind: ClassVar[JobKind]
    name: str
    image_uri: str
    role_arn: str
    instance_type: str = "ml.m5.large"
    instance_count: int = 1
    volume_size_gb: int = 30
    max_runtime_s: int = 3600
    entrypoint: tuple[str, ...] = ()
    arguments: tuple[str, ...] = ()
    environment: Mapping[str, str] = field(default_factory=dict)
    tags: Mapping[str, str] = field(default_factory=dict)
    vpc: VpcConfig | None = None
    volume_kms_key: str | None = None
    output_kms_key: str | None = None
    network_isolation: bool = False

    def _compute(self) -> dict:
        compute = {"InstanceType": self.instance_type, "InstanceCount": self.instance_count,
                   "VolumeSizeInGB": self.volume_size_gb}
        if self.volume_kms_key:
            compute["VolumeKmsKeyId"] = self.volume_kms_key
        return compute

    def _container(self) -> dict:
        container: dict[str, Any] = {}
        if self.entrypoint:
            container["ContainerEntrypoint"] = list(self.entrypoint)
        if self.arguments:
            container["ContainerArguments"] = list(self.arguments)
        return container

    def _common(self) -> dict:
        common: dict[str, Any] = {"RoleArn": self.role_arn, "StoppingCondition": {"MaxRuntimeInSeconds": self.max_runtime_s}}
        if self.environment:
            common["Environment"] = {k: str(v) for k, v in self.environment.items()}
        if self.tags:
            common["Tags"] = tag_list(self.tags)
        return common

    def request(self) -> dict:
        raise NotImplementedError


@dataclass(frozen=True, kw_only=True)
class ProcessingJobSpec(JobSpec):
    kind: ClassVar[JobKind] = PROCESSING
    inputs: tuple[ProcessingInput, ...] = ()
    outputs: tuple[ProcessingOutput, ...] = ()

    def request(self) -> dict:
        output_config: dict[str, Any] = {"Outputs": [o.request() for o in self.outputs]}
        if self.output_kms_key:
            output_config["KmsKeyId"] = self.output_kms_key
        network: dict[str, Any] = {"EnableNetworkIsolation": self.network_isolation}
        if self.vpc:
            network["VpcConfig"] = self.vpc.request()
        return {"ProcessingJobName": self.name,
                "AppSpecification": {"ImageUri": self.image_uri, **self._container()},
                "ProcessingInputs": [i.request() for i in self.inputs],
                "ProcessingOutputConfig": output_config,
                "ProcessingResources": {"ClusterConfig": self._compute()},
                "NetworkConfig": network, **self._common()}


@dataclass(frozen=True, kw_only=True)
class TrainingJobSpec(JobSpec):
    kind: ClassVar[JobKind] = TRAINING
    channels: tuple[Channel, ...] = ()
    output_s3_uri: str = ""
    hyperparameters: Mapping[str, Any] = field(default_factory=dict)

    def request(self) -> dict:
        output = {"S3OutputPath": self.output_s3_uri}
        if self.output_kms_key:
            output["KmsKeyId"] = self.output_kms_key
        request = {"TrainingJobName": self.name,
                   "AlgorithmSpecification": {"TrainingImage": self.image_uri, "TrainingInputMode": "File",
                                              **self._container()},
                   "HyperParameters": {k: str(v) for k, v in self.hyperparameters.items()},
                   "OutputDataConfig": output, "ResourceConfig": self._compute(),
                   "EnableNetworkIsolation": self.network_isolation, **self._common()}
        if self.channels:
            request["InputDataConfig"] = [c.request() for c in self.channels]
        if self.vpc:
            request["VpcConfig"] = self.vpc.request()
        return request


def definition_of(spec: JobSpec) -> str:
    """A hash of what the job runs: its request without its name and tags (the same for every attempt)."""
    request = {k: v for k, v in spec.request().items() if k not in (spec.kind.name_key, "Tags")}
    return definition_hash(request, length=16)


def creation_request(spec: JobSpec, name: str) -> dict:
    """The Create*Job request of ``spec`` under ``name``, tagged with the hash of its definition."""
    request = replace(spec, name=name).request()
    request["Tags"] = [*request.get("Tags", []), {"Key": DEFINITION_TAG, "Value": definition_of(spec)}]
    return request


def _check_definition(sagemaker: Any, spec: JobSpec, name: str, arn: str | None) -> None:
    """AwsResourceError when job ``name`` was created from another definition than ``spec``."""
    tags = {t["Key"]: t["Value"] for t in sagemaker.list_tags(ResourceArn=arn)["Tags"]} if arn else {}
    found, wanted = tags.get(DEFINITION_TAG), definition_of(spec)
    if found is None:
        log.warning("job_definition_unverified", job=name, hint=f"the job has no {DEFINITION_TAG} tag "
                    "(created elsewhere or by an older version): attached without comparing its definition")
    elif found != wanted:
        raise AwsResourceError(name, "attach to", f"it was started from another definition ({DEFINITION_TAG} "
                               f"{found}, this step's is {wanted}: another image, hyperparameters, inputs or "
                               "resources)", "run the changed step as a new release (a new EXECUTION_ID); "
                               "SageMaker job names cannot be reused")


def attempt_name(name: str, attempt: int) -> str:
    """The name of a job's ``attempt``-th run: ``name`` itself, then ``name-r2``, ``name-r3``, ..."""
    return name if attempt == 1 else resource_name(name, f"r{attempt}")


def _latest_attempt(kind: JobKind, base: str, sagemaker: Any) -> tuple[str, dict | None, int]:
    """The newest attempt of a job: its name, description (None if never started) and number."""
    name, description, attempt = base, kind.describe(sagemaker, base), 1
    while description is not None and kind.status.status(description) in kind.ended_badly:
        candidate = attempt_name(base, attempt + 1)
        newer = kind.describe(sagemaker, candidate)
        if newer is None:
            break
        name, description, attempt = candidate, newer, attempt + 1
    return name, description, attempt


def latest_attempt(kind: JobKind, name: str, *, clients: Clients | None = None) -> dict | None:
    """The description of the newest attempt of job ``name`` (see ``start_job``), or None."""
    return _latest_attempt(kind, name, resolve(clients).sagemaker)[1]


def start_job(spec: JobSpec, *, clients: Clients | None = None, retry_failed: bool = False) -> Ensured:
    """Start ``spec``'s job unless it (or a newer attempt) exists: CREATED, or UNCHANGED when attached.

    Raises JobFailed when the newest attempt ended Failed or Stopped, unless ``retry_failed``: then a
    fresh attempt starts under the derived name ``{name}-r{n}``. A create that loses a race to another
    driver ("already exists") attaches to the winner. ``details["status"]`` is the job's status.
    """
    sagemaker, kind = resolve(clients).sagemaker, spec.kind
    for _ in range(CREATE_RACE_ATTEMPTS):
        name, existing, attempt = _latest_attempt(kind, spec.name, sagemaker)
        if existing is not None:
            status = kind.status.status(existing)
            arn = existing.get(kind.arn_key)
            if status not in kind.ended_badly:
                _check_definition(sagemaker, spec, name, arn)
                log.info("job_attached" if status not in kind.status.succeeded else "job_reused",
                         job=name, kind=kind.status.kind, status=status)
                return Ensured(Action.UNCHANGED, kind.status.kind, name, arn, {"status": status})
            name = attempt_name(spec.name, attempt + 1)
            if not retry_failed:
                reason = kind.status.reason(existing) or "no failure reason was reported"
                raise kind.status.error(
                    existing[kind.name_key], status,
                    f"{reason}. This step already ran and ended {status}; re-run with retry_failed=True "
                    f"(bin/ scripts: --retry-failed) to start a fresh attempt named {name}",
                    kind.status.logs(existing[kind.name_key], existing), existing)
        try:
            response = getattr(sagemaker, kind.create_op)(**creation_request(spec, name))
        except ClientError as exc:
            if not is_already_exists(exc):
                raise
            log.info("job_create_race", job=name, error=str(exc))
            continue
        log.info("job_started", job=name, kind=kind.status.kind, fresh_attempt=name != spec.name)
        return Ensured(Action.CREATED, kind.status.kind, name, response.get(kind.arn_key), {"status": "InProgress"})
    raise AwsResourceError(spec.name, f"start {kind.status.kind}",
                           "it was reported as existing but could not be described",
                           "wait a minute and re-run; the job will be attached to")


def last_log_lines(log_group: str, job: str, lines: int = 30, *, clients: Clients | None = None) -> list[str]:
    """The last ``lines`` CloudWatch log lines of each log stream of ``job`` (empty when unavailable)."""
    logs = resolve(clients).logs
    try:
        streams = logs.describe_log_streams(logGroupName=log_group, logStreamNamePrefix=f"{job}/")["logStreams"]
        found: list[str] = []
        for stream in streams:
            events = logs.get_log_events(logGroupName=log_group, logStreamName=stream["logStreamName"],
                                         limit=lines, startFromHead=False)["events"]
            found += [f"[{stream['logStreamName']}] {e['message'].rstrip()}" for e in events]
        return found
    except ClientError as exc:
        log.warning("job_logs_unavailable", job=job, log_group=log_group, error=str(exc))
        return []


def wait_job(kind: JobKind, name: str, *, clients: Clients | None = None, policy: WaitPolicy = DEFAULT_POLICY,
             log_lines: int = 0, clock: Clock | None = None) -> dict:
    """Wait until job ``name`` completes; return its description.

    Raises JobFailed (reason, log group and streams) when it fails or stops; with ``log_lines > 0`` the
    error also carries the job's last log lines from CloudWatch Logs.
    """
    clients = resolve(clients)
    describe = getattr(clients.poller("sagemaker"), kind.describe_op)
    try:
        return wait_for(lambda: describe(**{kind.name_key: name}), kind.status, name, policy=policy, clock=clock)
    except JobFailed as exc:
        tail = last_log_lines(kind.log_group, name, log_lines, clients=clients) if log_lines > 0 else []
        if not tail:
            raise
        logs = f"{exc.logs}\nlast log lines:\n" + "\n".join(tail)
        raise type(exc)(exc.resource, exc.status, exc.reason, logs, exc.description) from exc


def run_job(spec: JobSpec, *, clients: Clients | None = None, retry_failed: bool = False,
            policy: WaitPolicy = DEFAULT_POLICY, log_lines: int = 0, clock: Clock | None = None) -> dict:
    """``start_job`` then ``wait_job``: the description of the completed job (or its newest attempt)."""
    clients = resolve(clients)
    started = start_job(spec, clients=clients, retry_failed=retry_failed)
    return wait_job(spec.kind, started.name, clients=clients, policy=policy, log_lines=log_lines, clock=clock)
