"""A test kit for automation built on mlops_core: moto plus what moto cannot do (the ``testing`` extra).

moto finishes every SageMaker job and endpoint at once, accepts duplicate creates, has no endpoint update
and no ``invoke_endpoint`` answers. ``Kit`` hooks a boto3 session's clients to add them:

- ``statuses``: scripted status sequences for training and processing jobs and endpoints, by name or
  prefix (the last status repeats), failure reasons, endpoint updates that SageMaker rolls back; a second
  create of a job fails as on AWS (ResourceInUse);
- ``responder``: ``invoke_endpoint`` answers from a function, with data capture records written as the
  endpoint's config asks;
- ``calls``: every call made, and the mutating ones (``calls.names()``);
- ``monitoring``: the monitoring schedules moto lacks (create, describe, update, delete, list) against moto's
  job definitions, and executions a test adds (``monitoring.add_execution(schedule, status, ...)``).

The pytest fixtures (``mlops_core.testing.plugin``, registered through the ``pytest11`` entry point) are
``aws_clients``, ``job_statuses``, ``fast_polling``, ``endpoint_responder`` and ``mutating_calls``.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

READ_PREFIXES = ("Describe", "List", "Get", "BatchGet", "Head", "Search", "Query", "Scan")
SECONDARY = {"InProgress": "Training", "Completed": "Completed", "Failed": "Failed", "Stopping": "Stopping",
             "Stopped": "Stopped"}
JOBS = {"training": ("TrainingJobName", "TrainingJobStatus", "CreateTrainingJob", "DescribeTrainingJob"),
        "processing": ("ProcessingJobName", "ProcessingJobStatus", "CreateProcessingJob", "DescribeProcessingJob")}


class VirtualClock:
    """``monotonic()`` and ``sleep()`` on a virtual timeline; ``sleeps`` records every delay slept."""

    def __init__(self, start: float = 1000.0):
        self.now = start
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        if seconds < 0:
            raise AssertionError(f"sleep({seconds}) of a negative delay")
        self.sleeps.append(seconds)
        self.now += seconds


class CallLog:
    """Every API call of the hooked clients, as (service, operation)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []

    @property
    def mutating(self) -> list[tuple[str, str]]:
        """The calls that may change something: everything but Describe / List / Get / ... reads."""
        return [(s, op) for s, op in self.calls if not op.startswith(READ_PREFIXES)]

    def names(self) -> list[str]:
        """The mutating calls as ``service:Operation``, in order: ``[]`` when a re-run changed nothing."""
        return [f"{service}:{operation}" for service, operation in self.mutating]

    def clear(self) -> None:
        self.calls.clear()


def record_calls(session: Any) -> CallLog:
    """A CallLog of every call made by the clients of ``session`` built from now on."""
    log = CallLog()
    # before-parameter-build: also the calls a hook of the kit answers at before-call (monitoring schedules)
    session.events.register("before-parameter-build", lambda model, **_: log.calls.append(
        (model.service_model.service_name, model.name)))
    return log


@dataclass
class StatusScript:
    """What SageMaker reports for the jobs or endpoints named ``pattern`` or ``pattern*``."""

    kind: str
    pattern: str
    statuses: list[str]
    failure_reason: str | None = None
    rolled_back: bool = False
    consumed: dict[str, int] = field(default_factory=dict)  # resource name -> statuses reported

    def matches(self, name: str) -> bool:
        return name == self.pattern or name.startswith(self.pattern)

    def next(self, name: str) -> tuple[str, bool]:
        """The status to report for ``name`` now, and whether it is the script's last."""
        index = self.consumed.get(name, 0)
        self.consumed[name] = index + 1
        return self.statuses[min(index, len(self.statuses) - 1)], index >= len(self.statuses) - 1

    def __str__(self) -> str:
        extra = (f", failure_reason={self.failure_reason!r}" if self.failure_reason else "") + (
            ", rolled_back=True" if self.rolled_back else "")
        return f"job_statuses.{self.kind}({self.pattern!r}, {self.statuses!r}{extra})"


class JobStatuses:
    """Scripts what SageMaker reports; see the module's docstring. Register before the code under test runs."""

    def __init__(self) -> None:
        self.scripts: list[StatusScript] = []
        self.created: dict[str, list[str]] = {"training": [], "processing": [], "endpoint": []}
        self.described: dict[str, list[str]] = {"training": [], "processing": [], "endpoint": []}

    def training(self, name: str, statuses: list[str], *, failure_reason: str | None = None) -> StatusScript:
        """Training jobs named ``name`` or ``name*`` report ``statuses`` in turn (the last repeats)."""
        return self._add(StatusScript("training", name, list(statuses), failure_reason))

    def processing(self, name: str, statuses: list[str], *, failure_reason: str | None = None) -> StatusScript:
        """Processing jobs named ``name`` or ``name*`` report ``statuses`` in turn (the last repeats)."""
        return self._add(StatusScript("processing", name, list(statuses), failure_reason))

    def endpoint(self, name: str, statuses: list[str], *, rolled_back: bool = False,
                 failure_reason: str | None = None) -> StatusScript:
        """The endpoint ``name`` reports ``statuses``; with ``rolled_back`` an update ends on the old config."""
        return self._add(StatusScript("endpoint", name, list(statuses), failure_reason, rolled_back))

    def _add(self, script: StatusScript) -> StatusScript:
        if not script.statuses:
            raise ValueError(f"{script}: give at least one status")
        self.scripts.insert(0, script)  # the newest script wins
        return script

    def script_for(self, kind: str, name: str) -> StatusScript | None:
        return next((s for s in self.scripts if s.kind == kind and s.matches(name)), None)

    def problems(self) -> list[str]:
        """Scripts the code under test never played to their end, with what it did call."""
        found = []
        for script in self.scripts:
            if any(count >= len(script.statuses) for count in script.consumed.values()):
                continue
            if script.consumed:
                played = ", ".join(f"{name}: {count} of {len(script.statuses)}" for name, count in script.consumed.items())
                found.append(f"{script} was not played to its end ({played} statuses reported): the code under "
                             "test stopped describing before the last status")
            else:
                kind = script.kind + (" job" if script.kind != "endpoint" else "")
                found.append(f"{script} was never used: the code under test described no {kind} named "
                             f"{script.pattern}*; it created {self.created[script.kind] or 'none'} and described "
                             f"{sorted(set(self.described[script.kind])) or 'none'}")
        return found


Responder = Callable[[bytes, str], "bytes | str"]

MONITORING_DEFINITIONS = {"DataQuality": "describe_data_quality_job_definition",
                          "ModelQuality": "describe_model_quality_job_definition"}


class MonitoringSchedules:
    """SageMaker's monitoring schedule calls, which moto does not implement, kept in memory; their job
    definitions must exist in moto. Executions are what a test adds with ``add_execution``."""

    def __init__(self, sagemaker: Callable[[], Any]):
        self._sagemaker = sagemaker  # an unhooked moto client, for the job definitions
        self.schedules: dict[str, dict] = {}
        self.executions: dict[str, list[dict]] = {}

    def add_execution(self, schedule: str, status: str, *, processing_job_arn: str | None = None,
                      failure_reason: str | None = None, scheduled_time: Any = None) -> dict:
        """An execution of ``schedule`` (newest last) as ListMonitoringExecutions reports it."""
        import datetime as dt

        when = scheduled_time or dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=len(self.executions.get(schedule, [])))
        summary = {"MonitoringScheduleName": schedule, "ScheduledTime": when, "CreationTime": when,
                   "LastModifiedTime": when, "MonitoringExecutionStatus": status,
                   **({"ProcessingJobArn": processing_job_arn} if processing_job_arn else {}),
                   **({"FailureReason": failure_reason} if failure_reason else {})}
        self.executions.setdefault(schedule, []).append(summary)
        return summary

    def handle(self, operation: str, params: dict) -> tuple[Any, dict]:
        name = params.get("MonitoringScheduleName", "")
        if operation == "ListMonitoringSchedules":
            return _ok({"MonitoringScheduleSummaries": [
                {k: v for k, v in s.items() if k != "MonitoringScheduleConfig"} for s in self.schedules.values()]})
        if operation == "CreateMonitoringSchedule" and name in self.schedules:
            return _error(400, "ResourceInUse", f"Monitoring schedule {name} already exists")
        if operation != "CreateMonitoringSchedule" and name not in self.schedules:
            return _error(400, "ResourceNotFound", f"Monitoring Schedule {name} not found")
        if operation in ("CreateMonitoringSchedule", "UpdateMonitoringSchedule"):
            return self._put(name, params["MonitoringScheduleConfig"], operation == "CreateMonitoringSchedule")
        if operation == "DeleteMonitoringSchedule":
            del self.schedules[name]
            return _ok({})
        runs = self.executions.get(name, [])
        if operation == "ListMonitoringExecutions":
            newest = sorted(runs, key=lambda r: r["ScheduledTime"], reverse=params.get("SortOrder") != "Ascending")
            return _ok({"MonitoringExecutionSummaries": newest[:params.get("MaxResults", 10)]})
        return _ok({**self.schedules[name], **({"LastMonitoringExecutionSummary": runs[-1]} if runs else {})})

    def _put(self, name: str, config: dict, create: bool) -> tuple[Any, dict]:
        import datetime as dt

        kind = config.get("MonitoringType", "DataQuality")
        sagemaker = self._sagemaker()
        try:
            definition = getattr(sagemaker, MONITORING_DEFINITIONS[kind])(
                JobDefinitionName=config["MonitoringJobDefinitionName"])
        except sagemaker.exceptions.ClientError as exc:
            return _error(400, "ValidationException", exc.response["Error"]["Message"])
        job_input = definition.get(f"{kind}JobInput", {})
        arn = definition["JobDefinitionArn"].rsplit(":", 1)[0] + f":monitoring-schedule/{name}"
        now = dt.datetime.now(dt.timezone.utc)
        previous = self.schedules.get(name, {})
        self.schedules[name] = {
            "MonitoringScheduleArn": arn, "MonitoringScheduleName": name, "MonitoringScheduleStatus": "Scheduled",
            "MonitoringType": kind, "CreationTime": previous.get("CreationTime", now), "LastModifiedTime": now,
            "MonitoringScheduleConfig": config,
            "EndpointName": job_input.get("EndpointInput", {}).get("EndpointName", "")}
        return _ok({"MonitoringScheduleArn": arn})


class Kit:
    """The hooks on one boto3 session (register before the session's clients are built)."""

    def __init__(self, session: Any):
        self.session = session
        self.calls = record_calls(session)
        self.statuses = JobStatuses()
        self.responders: dict[str, Responder] = {}
        self.endpoint_configs: dict[str, str] = {}  # endpoint -> the config it runs, as the kit reports it
        self.pending_updates: dict[str, tuple[str, str]] = {}  # endpoint -> (old config, wanted config)
        self.in_flight: set[str] = set()  # endpoints being created or updated: their describes play the script
        self.settled: dict[str, dict] = {}  # endpoint -> the status (and reason) its last script ended on
        self._plain = new_session(session.region_name)  # unhooked clients for the kit's own calls
        self._plain_clients: dict[str, Any] = {}
        events = session.events
        events.register("before-parameter-build", self._keep_params)
        for kind, (_, _, create, describe) in JOBS.items():
            events.register(f"before-call.sagemaker.{create}", self._refuse_duplicate(kind))
            events.register(f"after-call.sagemaker.{create}", self._created(kind))
            events.register(f"after-call.sagemaker.{describe}", self._job_status(kind))
        events.register("after-call.sagemaker.CreateEndpoint", self._endpoint_created)
        events.register("before-call.sagemaker.UpdateEndpoint", self._update_endpoint)
        events.register("after-call.sagemaker.DescribeEndpoint", self._endpoint_status)
        events.register("before-call.sagemaker-runtime.InvokeEndpoint", self._invoke)
        self.monitoring = MonitoringSchedules(lambda: self._client("sagemaker"))
        for operation in ("Create", "Describe", "Update", "Delete"):
            events.register(f"before-call.sagemaker.{operation}MonitoringSchedule", self._monitoring)
        events.register("before-call.sagemaker.ListMonitoringSchedules", self._monitoring)
        events.register("before-call.sagemaker.ListMonitoringExecutions", self._monitoring)

    def _monitoring(self, model: Any, context: dict, **_: Any) -> Any:
        return self.monitoring.handle(model.name, context.get("mlops_testing_params", {}))

    def _client(self, service: str) -> Any:
        if service not in self._plain_clients:
            self._plain_clients[service] = self._plain.client(service)
        return self._plain_clients[service]

    # --- bookkeeping --------------------------------------------------------------------------------
    @staticmethod
    def _keep_params(params: dict, context: dict, **_: Any) -> None:
        context["mlops_testing_params"] = dict(params)

    # --- jobs ---------------------------------------------------------------------------------------
    def _refuse_duplicate(self, kind: str) -> Callable[..., Any]:
        name_key = JOBS[kind][0]

        def refuse(context: dict, **_: Any) -> Any:
            name = context.get("mlops_testing_params", {}).get(name_key)
            if name in self.statuses.created[kind]:
                return _error(400, "ResourceInUse", f"{kind.capitalize()} job names must be unique within an AWS "
                              f"account and region, and a job named {name} already exists (job_statuses: the "
                              "code under test created it a second time)")
            return None
        return refuse

    def _created(self, kind: str) -> Callable[..., Any]:
        name_key = JOBS[kind][0]

        def created(http_response: Any, context: dict, **_: Any) -> None:
            if http_response.status_code < 300:
                self.statuses.created[kind].append(context.get("mlops_testing_params", {})[name_key])
        return created

    def _job_status(self, kind: str) -> Callable[..., Any]:
        name_key, status_key = JOBS[kind][:2]

        def overlay(parsed: dict, **_: Any) -> None:
            name = parsed.get(name_key)
            if not name or "Error" in parsed:
                return
            self.statuses.described[kind].append(name)
            script = self.statuses.script_for(kind, name)
            if script is None:
                return
            status, _last = script.next(name)
            parsed[status_key] = status
            if kind == "training":
                parsed["SecondaryStatus"] = SECONDARY.get(status, status)
            if status == "Failed":
                parsed["FailureReason"] = script.failure_reason or f"failed as scripted by {script}"
                if kind == "processing":
                    parsed["ExitMessage"] = parsed["FailureReason"]
            else:
                parsed.pop("FailureReason", None)
        return overlay

    # --- endpoints ----------------------------------------------------------------------------------
    def _endpoint_created(self, http_response: Any, context: dict, **_: Any) -> None:
        params = context.get("mlops_testing_params", {})
        if http_response.status_code < 300:
            self.statuses.created["endpoint"].append(params["EndpointName"])
            self.endpoint_configs[params["EndpointName"]] = params["EndpointConfigName"]
            self.in_flight.add(params["EndpointName"])

    def _update_endpoint(self, context: dict, **_: Any) -> Any:
        """moto has no UpdateEndpoint: accepted here, the endpoint reports the new config when it is done."""
        params = context.get("mlops_testing_params", {})
        name, wanted = params["EndpointName"], params["EndpointConfigName"]
        sagemaker = self._client("sagemaker")
        try:
            current = sagemaker.describe_endpoint(EndpointName=name)
            sagemaker.describe_endpoint_config(EndpointConfigName=wanted)
        except sagemaker.exceptions.ClientError as exc:
            return _error(400, "ValidationException", exc.response["Error"]["Message"])
        self.pending_updates[name] = (self.endpoint_configs.get(name, current["EndpointConfigName"]), wanted)
        self.in_flight.add(name)
        return _ok({"EndpointArn": current["EndpointArn"]})

    def _endpoint_status(self, parsed: dict, **_: Any) -> None:
        name = parsed.get("EndpointName")
        if not name or "Error" in parsed:
            return
        self.statuses.described["endpoint"].append(name)
        parsed["EndpointConfigName"] = self.endpoint_configs.get(name, parsed["EndpointConfigName"])
        if name not in self.in_flight:
            parsed.update(self.settled.get(name, {}))  # settled: as moto, or the last script, left it
            return
        script = self.statuses.script_for("endpoint", name)
        status, last = script.next(name) if script else (parsed["EndpointStatus"], True)
        parsed["EndpointStatus"] = status
        if last:
            self.in_flight.discard(name)
        if name in self.pending_updates and last:
            old, wanted = self.pending_updates.pop(name)
            if script and script.rolled_back:
                parsed["FailureReason"] = script.failure_reason or (
                    f"Failed to update endpoint to {wanted}: rolled back to {old} (scripted by {script})")
            else:
                self.endpoint_configs[name] = parsed["EndpointConfigName"] = wanted
        if status == "Failed":
            parsed["FailureReason"] = (script.failure_reason if script else None) or f"failed as scripted by {script}"
        if last:
            self.settled[name] = {k: parsed[k] for k in ("EndpointStatus", "FailureReason") if k in parsed}

    def _invoke(self, context: dict, **_: Any) -> Any:
        params = context.get("mlops_testing_params", {})
        name = params["EndpointName"]
        respond = self.responders.get(name)
        if respond is None:
            return _error(400, "ValidationError", f"Endpoint {name} has no endpoint_responder: call "
                          f"endpoint_responder({name!r}, fn) in the test (responders: {sorted(self.responders)})")
        body = params.get("Body", b"")
        body = body.read() if hasattr(body, "read") else body
        body = body.encode() if isinstance(body, str) else body
        content_type = params.get("ContentType", "application/octet-stream")
        answer = respond(body, content_type)
        answer = answer.encode() if isinstance(answer, str) else answer
        answer_type = params.get("Accept") or content_type
        self._capture(name, body, content_type, answer, answer_type, params.get("InferenceId"))
        from botocore.response import StreamingBody

        return _ok({"Body": StreamingBody(io.BytesIO(answer), len(answer)), "ContentType": answer_type,
                    "InvokedProductionVariant": "AllTraffic"})

    def _capture(self, endpoint: str, body: bytes, content_type: str, answer: bytes, answer_type: str,
                 inference_id: str | None) -> None:
        from mlops_core.sagemaker.capture import write_capture

        sagemaker = self._client("sagemaker")
        config_name = self.endpoint_configs.get(endpoint)
        if config_name is None:
            return
        config = sagemaker.describe_endpoint_config(EndpointConfigName=config_name)
        variant = config["ProductionVariants"][0]["VariantName"]
        write_capture(self._client("s3"), endpoint, variant, config.get("DataCaptureConfig"), body,
                      content_type, answer, answer_type, inference_id)


_LOADER: list[Any] = []


def new_session(region: str) -> Any:
    """A boto3 session with dummy credentials whose service models come from one loader shared by every
    session of the kit: the models are parsed once per test run, not once per test."""
    import boto3
    import botocore.session

    core = botocore.session.get_session()
    if _LOADER:
        core.register_component("data_loader", _LOADER[0])
    else:
        _LOADER.append(core.get_component("data_loader"))
    return boto3.Session(botocore_session=core, region_name=region, aws_access_key_id="testing",
                         aws_secret_access_key="testing")


def _ok(parsed: dict) -> tuple[Any, dict]:
    from botocore.awsrequest import AWSResponse

    return AWSResponse(None, 200, {}, None), {**parsed, "ResponseMetadata": {"HTTPStatusCode": 200}}


def _error(status: int, code: str, message: str) -> tuple[Any, dict]:
    from botocore.awsrequest import AWSResponse

    return AWSResponse(None, status, {}, None), {"Error": {"Code": code, "Message": message},
                                                 "ResponseMetadata": {"HTTPStatusCode": status}}


def json_responder(predict: Callable[[list[str]], list[Any]]) -> Responder:
    """A responder for CSV rows: ``predict(rows)`` -> values, answered as ``{"predictions": [...]}``."""
    def respond(body: bytes, _content_type: str) -> str:
        rows = [line for line in body.decode().splitlines() if line.strip()]
        return json.dumps({"predictions": predict(rows)})
    return respond
