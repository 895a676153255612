"""Model Monitor in the embedded AWS: monitoring schedules (moto keeps only their job definitions), executions
run when asked (``run_now``, not on a wall clock) as processing jobs of the analyzer (``mlops_core.local.analyzer``
stands in for AWS's image), and what AWS does after an execution: its status from the violations, the
analyzer's metrics put to CloudWatch, the alarms on them evaluated, and an alarm's state change delivered
to the EventBridge rules that match it (a CodePipeline target gets StartPipelineExecution).
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Callable, Mapping
from typing import Any

from mlops_core.aws import Clients
from mlops_core.local.analyzer import METRICS_FILE, OPERATORS
from mlops_core.local.runtime import LocalSageMaker, LocalState, now_iso, sagemaker_error
from mlops_core.logs import get_logger
from mlops_core.s3 import list_keys, parse_s3_uri, read_json_if_exists, write_json
from mlops_core.sagemaker.monitoring import (
    DATA_QUALITY,
    ENDPOINT_PATH,
    GROUND_TRUTH_PATH,
    OPERATIONS,
    OUTPUT_PATH,
    VIOLATION_STATUS,
    Execution,
    wait_latest_execution,
)

KIND = "schedules"
BASELINE_PATH = "/opt/ml/processing/baseline"
log = get_logger("local.monitoring")


def pattern_matches(pattern: Any, event: Any) -> bool:
    """EventBridge's matching for exact values: every key of the pattern is in the event and, at a leaf, the
    event's value (or one of its values) is among the pattern's."""
    if isinstance(pattern, Mapping):
        return isinstance(event, Mapping) and all(k in event and pattern_matches(v, event[k])
                                                  for k, v in pattern.items())
    values = event if isinstance(event, list) else [event]
    return any(value in pattern for value in values)


class LocalMonitoring:
    """The monitoring schedule calls of SageMaker, answered locally (see the module's docstring)."""

    def __init__(self, sagemaker: LocalSageMaker, client: Callable[[str], Any], state: LocalState):
        self._sagemaker = sagemaker
        self._client = client  # service -> a pass-through client of moto
        self._state = state
        self._s3_clients = Clients(s3=client("s3"))

    # schedules ----------------------------------------------------------------------------------
    def _schedule(self, name: str, operation: str) -> dict:
        record = self._state.read(KIND, name)
        if record is None:
            raise sagemaker_error("ResourceNotFound", f"Monitoring Schedule {name} not found", operation)
        return record

    def _definition(self, config: Mapping[str, Any]) -> dict:
        """The schedule's job definition as moto keeps it (ValidationException when it does not exist)."""
        kind = config.get("MonitoringType", DATA_QUALITY)
        describe = getattr(self._client("sagemaker"), OPERATIONS[kind][1])
        return describe(JobDefinitionName=config["MonitoringJobDefinitionName"])

    def create_monitoring_schedule(self, MonitoringScheduleName: str, MonitoringScheduleConfig: dict,  # noqa: N803
                                   Tags: list | None = None) -> dict:  # noqa: N803
        name = MonitoringScheduleName
        if self._state.read(KIND, name) is not None:
            raise sagemaker_error("ValidationException", f"Monitoring Schedule {name} already exists",
                                  "CreateMonitoringSchedule")
        definition = self._definition(MonitoringScheduleConfig)
        arn = definition["JobDefinitionArn"].split(":")[:5]
        record = {"MonitoringScheduleArn": ":".join([*arn, f"monitoring-schedule/{name}"]),
                  "MonitoringScheduleName": name, "MonitoringScheduleStatus": "Scheduled",
                  "MonitoringType": MonitoringScheduleConfig.get("MonitoringType", DATA_QUALITY),
                  "MonitoringScheduleConfig": MonitoringScheduleConfig, "Tags": Tags or [],
                  "EndpointName": self._endpoint_of(definition), "CreationTime": now_iso(),
                  "LastModifiedTime": now_iso(), "executions": []}
        self._state.write(KIND, name, record)
        return {"MonitoringScheduleArn": record["MonitoringScheduleArn"]}

    @staticmethod
    def _endpoint_of(definition: Mapping[str, Any]) -> str:
        job_input = definition.get("DataQualityJobInput") or definition.get("ModelQualityJobInput") or {}
        return job_input.get("EndpointInput", {}).get("EndpointName", "")

    def describe_monitoring_schedule(self, MonitoringScheduleName: str) -> dict:  # noqa: N803
        record = self._finish_executions(self._schedule(MonitoringScheduleName, "DescribeMonitoringSchedule"))
        described = {k: v for k, v in record.items() if k not in ("executions", "Tags")}
        for key in ("CreationTime", "LastModifiedTime"):
            described[key] = dt.datetime.fromisoformat(record[key])
        if record["executions"]:
            described["LastMonitoringExecutionSummary"] = self._summary(record, record["executions"][-1])
        return described

    def update_monitoring_schedule(self, MonitoringScheduleName: str,  # noqa: N803
                                   MonitoringScheduleConfig: dict) -> dict:  # noqa: N803
        record = self._schedule(MonitoringScheduleName, "UpdateMonitoringSchedule")
        definition = self._definition(MonitoringScheduleConfig)
        self._state.write(KIND, MonitoringScheduleName, {
            **record, "MonitoringScheduleConfig": MonitoringScheduleConfig, "LastModifiedTime": now_iso(),
            "EndpointName": self._endpoint_of(definition)})
        return {"MonitoringScheduleArn": record["MonitoringScheduleArn"]}

    def delete_monitoring_schedule(self, MonitoringScheduleName: str) -> dict:  # noqa: N803
        self._schedule(MonitoringScheduleName, "DeleteMonitoringSchedule")
        self._state.delete(KIND, MonitoringScheduleName)
        return {}

    def list_monitoring_schedules(self, EndpointName: str | None = None, **_rest: Any) -> dict:  # noqa: N803
        folder = self._state.root / KIND
        names = sorted(p.stem for p in folder.glob("*.json")) if folder.exists() else []
        found = [self.describe_monitoring_schedule(name) for name in names]
        return {"MonitoringScheduleSummaries": [
            {k: s[k] for k in ("MonitoringScheduleName", "MonitoringScheduleArn", "CreationTime", "LastModifiedTime",
                               "MonitoringScheduleStatus", "EndpointName", "MonitoringType")}
            for s in found if EndpointName in (None, s["EndpointName"])]}

    # executions ---------------------------------------------------------------------------------
    def list_monitoring_executions(self, MonitoringScheduleName: str, SortOrder: str = "Descending",  # noqa: N803
                                   MaxResults: int = 10, **_rest: Any) -> dict:  # noqa: N803
        record = self._finish_executions(self._schedule(MonitoringScheduleName, "ListMonitoringExecutions"))
        summaries = [self._summary(record, e) for e in record["executions"]]
        summaries.sort(key=lambda s: s["ScheduledTime"], reverse=SortOrder == "Descending")
        return {"MonitoringExecutionSummaries": summaries[:MaxResults]}

    @staticmethod
    def _summary(record: Mapping[str, Any], execution: Mapping[str, Any]) -> dict:
        summary = {"MonitoringScheduleName": record["MonitoringScheduleName"],
                   "ScheduledTime": dt.datetime.fromisoformat(execution["scheduled"]),
                   "CreationTime": dt.datetime.fromisoformat(execution["scheduled"]),
                   "LastModifiedTime": dt.datetime.fromisoformat(execution.get("ended") or execution["scheduled"]),
                   "MonitoringExecutionStatus": execution["status"], "ProcessingJobArn": execution["job_arn"],
                   "EndpointName": record["EndpointName"], "MonitoringType": record["MonitoringType"],
                   "MonitoringJobDefinitionName": execution["definition"]}
        if execution.get("failure_reason"):
            summary["FailureReason"] = execution["failure_reason"]
        return summary

    def run_now(self, schedule: str) -> dict:
        """Start one execution of ``schedule`` now (the embedded AWS has no clock-driven runs); its summary."""
        record = self._schedule(schedule, "RunMonitoringSchedule")
        config = record["MonitoringScheduleConfig"]
        definition = self._definition(config)
        when = dt.datetime.now(dt.timezone.utc)
        job = f"model-monitoring-{when:%Y%m%d%H%M}-{uuid.uuid4().hex[:8]}"  # as SageMaker names them
        response = self._sagemaker.create_processing_job(**self._job_request(job, record, definition, when))
        execution = {"scheduled": when.isoformat(), "status": "InProgress", "job": job,
                     "job_arn": response["ProcessingJobArn"], "definition": config["MonitoringJobDefinitionName"]}
        record["executions"].append(execution)
        self._state.write(KIND, schedule, record)
        log.info("monitoring_execution_started", schedule=schedule, job=job)
        return self._summary(record, execution)

    def _job_request(self, job: str, record: Mapping[str, Any], definition: Mapping[str, Any],
                     when: dt.datetime) -> dict:
        """The processing job AWS starts for one execution: the analyzer over the endpoint's captured data
        (and, for model quality, the ground truth) against the baseline, reports under
        ``{output}/{endpoint}/{schedule}/yyyy/mm/dd/hh``."""
        quality = record["MonitoringType"] == DATA_QUALITY
        prefix = "DataQuality" if quality else "ModelQuality"
        app, job_input = definition[f"{prefix}AppSpecification"], definition[f"{prefix}JobInput"]
        endpoint = job_input["EndpointInput"]["EndpointName"]
        baseline = definition[f"{prefix}BaselineConfig"]
        capture = self._client("sagemaker").describe_endpoint_config(EndpointConfigName=self._client(
            "sagemaker").describe_endpoint(EndpointName=endpoint)["EndpointConfigName"]).get("DataCaptureConfig", {})
        if not capture.get("EnableCapture"):
            raise sagemaker_error("ValidationException", f"endpoint {endpoint} captures no data: a monitoring "
                                  "schedule needs DataCaptureConfig on its endpoint config", "RunMonitoringSchedule")
        output = definition[f"{prefix}JobOutputConfig"]["MonitoringOutputs"][0]["S3Output"]
        folder = "/".join([output["S3Uri"].rstrip("/"), endpoint, record["MonitoringScheduleName"]])
        since = record["executions"][-1]["scheduled"] if record["executions"] else None
        manifest = self._capture_manifest(f"{capture['DestinationS3Uri'].rstrip('/')}/{endpoint}/", since,
                                          f"{folder}/manifests/{when:%Y%m%d%H%M%S}.json")
        inputs = [self._input("endpoint", manifest, f"{ENDPOINT_PATH}/{endpoint}", "ManifestFile")]
        environment = {**app.get("Environment", {}), "dataset_source": ENDPOINT_PATH, "output_path": OUTPUT_PATH,
                       "dataset_format": json.dumps({"sagemakerCaptureJson": {
                           "captureIndexNames": ["endpointInput", "endpointOutput"]}}),
                       "sagemaker_endpoint_name": endpoint, "sagemaker_monitoring_schedule_name":
                       record["MonitoringScheduleName"], "start_time": (when - dt.timedelta(hours=1)).isoformat(),
                       "end_time": when.isoformat()}
        for key, resource in (("baseline_constraints", "ConstraintsResource"),
                              ("baseline_statistics", "StatisticsResource")):
            if resource in baseline:
                local = f"{BASELINE_PATH}/{key}"
                inputs.append(self._input(key, baseline[resource]["S3Uri"], local))
                environment[key] = f"{local}/{baseline[resource]['S3Uri'].rsplit('/', 1)[-1]}"
        if not quality:
            inputs.append(self._input("groundtruth", job_input["GroundTruthS3Input"]["S3Uri"], GROUND_TRUTH_PATH))
            environment.update({"analysis_type": "MODEL_QUALITY", "problem_type": app.get("ProblemType", ""),
                                "inference_attribute": job_input["EndpointInput"].get("InferenceAttribute", ""),
                                "ground_truth_source": GROUND_TRUTH_PATH})
        report = f"{folder}/{when:%Y/%m/%d/%H}"
        cluster = definition["JobResources"]["ClusterConfig"]
        return {"ProcessingJobName": job, "AppSpecification": {"ImageUri": app["ImageUri"]},
                "ProcessingInputs": inputs, "Environment": environment, "RoleArn": definition["RoleArn"],
                "ProcessingOutputConfig": {"Outputs": [{"OutputName": "monitoring_output", "S3Output": {
                    "S3Uri": report, "LocalPath": OUTPUT_PATH, "S3UploadMode": "EndOfJob"}}]},
                "ProcessingResources": {"ClusterConfig": cluster},
                "StoppingCondition": definition.get("StoppingCondition", {"MaxRuntimeInSeconds": 1800})}

    @staticmethod
    def _input(name: str, uri: str, local: str, data_type: str = "S3Prefix") -> dict:
        return {"InputName": name, "S3Input": {"S3Uri": uri, "LocalPath": local, "S3DataType": data_type,
                                               "S3InputMode": "File", "S3DataDistributionType": "FullyReplicated"}}

    def _capture_manifest(self, capture_prefix: str, since: str | None, manifest_uri: str) -> str:
        """A manifest of the capture files written since the previous execution (AWS reads the past hour;
        here executions run when asked, so each reads what came since the last one); its S3 URI."""
        after = dt.datetime.fromisoformat(since).replace(microsecond=0) if since else None  # S3 keeps seconds
        keys = [item["Key"] for item in list_keys(capture_prefix, clients=self._s3_clients)
                if after is None or item["LastModified"] >= after]
        if not keys:
            raise sagemaker_error("ValidationException", f"Job inputs had no data: nothing was captured under "
                                  f"{capture_prefix} since {since or 'the endpoint started'}", "RunMonitoringSchedule")
        bucket, prefix = parse_s3_uri(capture_prefix)
        write_json(manifest_uri, [{"prefix": f"s3://{bucket}/{prefix}"}, *(k[len(prefix):] for k in keys)],
                   clients=self._s3_clients)
        return manifest_uri

    def _finish_executions(self, record: dict) -> dict:
        """Settle the executions whose processing job ended: status from the violations, metrics, alarms."""
        changed = False
        for execution in record["executions"]:
            if execution["status"] != "InProgress":
                continue
            job = self._sagemaker.describe_processing_job(ProcessingJobName=execution["job"])
            status = job["ProcessingJobStatus"]
            if status in ("InProgress", "Stopping"):
                continue
            changed = True
            execution["ended"] = now_iso()
            if status != "Completed":
                execution.update(status=status, failure_reason=job.get("FailureReason", f"processing job {status}"))
                continue
            report = job["ProcessingOutputConfig"]["Outputs"][0]["S3Output"]["S3Uri"]
            violations = read_json_if_exists(f"{report}/constraint_violations.json", clients=self._s3_clients) or {}
            execution["status"] = VIOLATION_STATUS if violations.get("violations") else "Completed"
            self._publish(read_json_if_exists(f"{report}/{METRICS_FILE}", clients=self._s3_clients) or {})
        if changed:
            self._state.write(KIND, record["MonitoringScheduleName"], record)
        return record

    # after an execution: metrics, alarms, rules ---------------------------------------------------
    def _publish(self, metrics: Mapping[str, Any]) -> None:
        """Put the execution's metrics, evaluate the alarms on them, deliver their state changes."""
        cloudwatch = self._client("cloudwatch")
        namespace, data = metrics.get("Namespace"), metrics.get("MetricData", [])
        if not namespace or not data:
            return
        for start in range(0, len(data), 20):
            cloudwatch.put_metric_data(Namespace=namespace, MetricData=data[start:start + 20])
        latest = {metric_key(namespace, d["MetricName"], d.get("Dimensions", [])): float(d["Value"]) for d in data}
        for alarm in cloudwatch.describe_alarms(AlarmTypes=["MetricAlarm"])["MetricAlarms"]:
            value = alarm_value(alarm, latest)
            if value is None:
                continue
            breaching = OPERATORS[alarm["ComparisonOperator"]](value, float(alarm["Threshold"]))
            state = "ALARM" if breaching else "OK"
            if state == alarm["StateValue"]:
                continue
            reason = f"Threshold Crossed: datapoint {value:.4g} {alarm['ComparisonOperator']} {alarm['Threshold']}"
            cloudwatch.set_alarm_state(AlarmName=alarm["AlarmName"], StateValue=state, StateReason=reason)
            if state == "ALARM":
                self._deliver(alarm_event(alarm, state, reason))

    def _deliver(self, event: Mapping[str, Any]) -> None:
        """Send ``event`` to the targets of the rules it matches; a pipeline target is started."""
        events = self._client("events")
        for rule in events.list_rules()["Rules"]:
            if rule.get("State") != "ENABLED" or not pattern_matches(json.loads(rule.get("EventPattern") or "{}"),
                                                                      event):
                continue
            for target in events.list_targets_by_rule(Rule=rule["Name"])["Targets"]:
                service, resource = target["Arn"].split(":")[2], target["Arn"].split(":")[-1]
                if service != "codepipeline":
                    log.warning("local_target_not_delivered", rule=rule["Name"], target=target["Arn"])
                    continue
                execution = self._client("codepipeline").start_pipeline_execution(name=resource)
                log.info("local_rule_started_pipeline", rule=rule["Name"], pipeline=resource,
                         execution_id=execution["pipelineExecutionId"])


MetricKey = tuple[str, str, frozenset]


def metric_key(namespace: str, name: str, dimensions: list[dict]) -> MetricKey:
    return namespace, name, frozenset((d["Name"], d["Value"]) for d in dimensions)


def alarm_value(alarm: Mapping[str, Any], latest: Mapping[MetricKey, float]) -> float | None:
    """The value an alarm sees in the metrics just put: its own metric's, or for a ``MAX(METRICS())``
    expression the largest of its metrics' (None when none of them is among them)."""
    if alarm.get("MetricName"):
        return latest.get(metric_key(alarm["Namespace"], alarm["MetricName"], alarm.get("Dimensions", [])))
    queries = alarm.get("Metrics", [])
    expressions = [q.get("Expression", "") for q in queries if q.get("Expression")]
    metrics = [q["MetricStat"]["Metric"] for q in queries if "MetricStat" in q]
    keys = [metric_key(m["Namespace"], m["MetricName"], m.get("Dimensions", [])) for m in metrics]
    values = [latest[key] for key in keys if key in latest]
    if not values:
        return None
    if expressions != ["MAX(METRICS())"]:
        log.warning("local_alarm_not_evaluated", alarm=alarm["AlarmName"], expressions=expressions,
                    hint="the embedded AWS evaluates one metric or MAX(METRICS())")
        return None
    return max(values)


def alarm_event(alarm: Mapping[str, Any], state: str, reason: str) -> dict:
    """The "CloudWatch Alarm State Change" event EventBridge receives."""
    arn = alarm["AlarmArn"]
    return {"version": "0", "source": "aws.cloudwatch", "detail-type": "CloudWatch Alarm State Change",
            "account": arn.split(":")[4], "region": arn.split(":")[3], "time": now_iso(), "resources": [arn],
            "detail": {"alarmName": alarm["AlarmName"], "state": {"value": state, "reason": reason},
                       "previousState": {"value": alarm["StateValue"]}}}


def request_execution(endpoint_url: str, schedule: str) -> dict:
    """Ask the embedded AWS at ``endpoint_url`` to run ``schedule`` now (what AWS does on the hour)."""
    import urllib.error
    import urllib.parse
    import urllib.request

    url = f"{endpoint_url.rstrip('/')}/_local/monitoring-schedules/{urllib.parse.quote(schedule)}/executions"
    try:
        with urllib.request.urlopen(urllib.request.Request(url, data=b"{}", method="POST"), timeout=60) as answer:
            return json.loads(answer.read())
    except urllib.error.HTTPError as error:
        detail = json.loads(error.read() or b"{}").get("message", "")
        raise RuntimeError(f"the embedded AWS at {endpoint_url} did not run schedule {schedule}: "
                           f"HTTP {error.code} {detail}") from None


def run_schedules_now(endpoint_url: str, schedules: list[str], *, clients: Clients | None = None) -> list[Execution]:
    """Run ``schedules`` now in the embedded AWS at ``endpoint_url`` and wait for their executions (in order)."""
    for name in schedules:
        request_execution(endpoint_url, name)
    return [wait_latest_execution(name, clients=clients) for name in schedules]
