"""The project's monitoring plan: the names, S3 folders and specs of its Model Monitor baselines and schedules,
and the closed loop bootstrap creates: two CloudWatch alarms on the monitors' metrics (the largest feature
drift; the model-quality RMSE) and an EventBridge rule that starts the project's pipeline (a retraining)
when either goes to ALARM, through a role allowed only that pipeline's StartPipelineExecution.

Layout: ``s3://{bucket}/{model}/monitoring/`` holds ``baselines/{data-quality,model-quality}/``, ``reports/``
and ``ground-truth/``; schedules are ``{model}-data-quality`` and ``{model}-model-quality`` on the endpoint
``{model}``; the events role is in ``policies``.
"""

from __future__ import annotations

import csv
import io

from mlops_core.aws import Clients, resolve
from mlops_core.cloudwatch import MetricAlarm, ensure_alarm
from mlops_core.ensure import Ensured
from mlops_core.events import Rule, Target
from mlops_core.naming import resource_name
from mlops_core.project.names import Project
from mlops_core.s3 import (
    bucket_exists,
    list_keys,
    parse_s3_uri,
    read_json,
    read_json_if_exists,
    read_text,
    s3_uri,
    write_json,
)
from mlops_core.sagemaker.jobs import PROCESSING, wait_job
from mlops_core.sagemaker.monitoring import (
    DATA_METRICS_NAMESPACE,
    DATA_QUALITY,
    MODEL_METRICS_NAMESPACE,
    MODEL_QUALITY,
    BaselineSpec,
    ModelQualityProblem,
    MonitorSpec,
    ensure_monitoring_schedule,
    require_baseline,
    start_baseline_job,
)

FEATURES = ("sex", "length", "diameter", "height", "whole_weight", "shucked_weight", "viscera_weight",
            "shell_weight")  # the endpoint's input columns (model_container/schema.py), in order
DRIFT_THRESHOLD = 0.1  # the analyzer's default comparison_threshold for baseline drift
DEFAULT_RMSE_ALARM = 3.0  # until a model-quality baseline exists: about the training-mean baseline's RMSE
# The analyzer suggests the baselined metrics themselves as limits, which a sample of normal traffic breaks about
# half the time; the plan allows errors this much larger (relative) before it calls the model worse than at release.
RMSE_HEADROOM = 0.15
SCHEDULE_SUFFIX = {DATA_QUALITY: "data-quality", MODEL_QUALITY: "model-quality"}


def monitoring_uri(project: Project, *parts: str) -> str:
    return s3_uri(project.bucket, project.model, "monitoring", *parts)


def schedule_name(project: Project, monitoring_type: str) -> str:
    return resource_name(project.model, SCHEDULE_SUFFIX[monitoring_type])


def baseline_uri(project: Project, monitoring_type: str) -> str:
    return monitoring_uri(project, "baselines", SCHEDULE_SUFFIX[monitoring_type])


def ground_truth_uri(project: Project) -> str:
    return monitoring_uri(project, "ground-truth")


def baseline_spec(project: Project, monitoring_type: str, dataset_s3_uri: str, run_id: str) -> BaselineSpec:
    """The baseline job of one run (``run_id``: e.g. the release's execution id), named
    ``{model}-baseline-{dq|mq}-{run_id}``."""
    short = "dq" if monitoring_type == DATA_QUALITY else "mq"
    return BaselineSpec(name=resource_name(project.model, f"baseline-{short}", run_id),
                        role_arn=project.role_arn("sagemaker"), region=project.region, dataset_s3_uri=dataset_s3_uri,
                        output_s3_uri=baseline_uri(project, monitoring_type), tags=project.tags,
                        model_quality=ModelQualityProblem() if monitoring_type == MODEL_QUALITY else None)


def data_quality_dataset(project: Project, execution_id: str, *, clients: Clients | None = None) -> str:
    """The release's training rows as the data-quality baseline's input: the features only, under a header
    naming them (so violations name features, and captured rows map to them by position); its S3 URI."""
    clients = resolve(clients)
    training = s3_uri(project.bucket, project.model, execution_id, "preprocess", "training", "training.csv")
    target = monitoring_uri(project, "baseline-input", execution_id, "training-features.csv")
    if not any(True for _ in list_keys(target, clients=clients)):
        rows = csv.reader(io.StringIO(read_text(training, clients=clients)))
        body = io.StringIO()
        writer = csv.writer(body, lineterminator="\n")
        writer.writerow(FEATURES)
        writer.writerows(row[:len(FEATURES)] for row in rows if row)
        bucket, key = parse_s3_uri(target)
        clients.s3.put_object(Bucket=bucket, Key=key, Body=body.getvalue().encode())
    return target


def model_quality_dataset(project: Project, execution_id: str) -> str:
    """The release's test predictions (``prediction,label``, written by the evaluate job) as the model-quality
    baseline's input."""
    return s3_uri(project.bucket, project.model, execution_id, "evaluation", "predictions.csv")


def monitor_spec(project: Project, monitoring_type: str, *, schedule_expression: str | None = None) -> MonitorSpec:
    """The schedule of ``monitoring_type`` on the project's endpoint."""
    extra = {"schedule_expression": schedule_expression} if schedule_expression else {}
    return MonitorSpec(schedule_name=schedule_name(project, monitoring_type), monitoring_type=monitoring_type,
                       endpoint=project.model, role_arn=project.role_arn("sagemaker"), region=project.region,
                       baseline_s3_uri=baseline_uri(project, monitoring_type),
                       output_s3_uri=monitoring_uri(project, "reports"),
                       ground_truth_s3_uri=ground_truth_uri(project) if monitoring_type == MODEL_QUALITY else None,
                       tags=project.tags, **extra)


def baselined_rmse_limit(project: Project, *, clients: Clients | None = None) -> float | None:
    """The RMSE limit in the model-quality baseline's constraints.json, or None before the first baseline."""
    if not bucket_exists(project.bucket, clients=clients):
        return None
    document = read_json_if_exists(f"{baseline_uri(project, MODEL_QUALITY)}/constraints.json", clients=clients)
    return float(document["regression_constraints"]["rmse"]["threshold"]) if document else None


def alarm_names(project: Project) -> tuple[str, str]:
    """The drift alarm's and the RMSE alarm's names (no AWS call: teardown and the rule need only these)."""
    return resource_name(project.model, "feature-drift"), resource_name(project.model, "model-quality-rmse")


def alarms(project: Project, *, clients: Clients | None = None) -> list[MetricAlarm]:
    """The drift alarm (largest feature drift above the analyzer's threshold) and the RMSE alarm (above the
    baselined limit, or DEFAULT_RMSE_ALARM before a baseline): the same on every run, so re-runs are no-ops."""
    def dimensions(monitoring_type: str) -> dict[str, str]:
        return {"Endpoint": project.model, "MonitoringSchedule": schedule_name(project, monitoring_type)}
    drift_name, rmse_name = alarm_names(project)
    drift = MetricAlarm(
        name=drift_name, namespace=DATA_METRICS_NAMESPACE, threshold=DRIFT_THRESHOLD,
        dimensions=dimensions(DATA_QUALITY), expression="MAX(METRICS())",
        metrics=tuple((f"m{i}", DATA_METRICS_NAMESPACE, f"feature_baseline_drift_{f}")
                      for i, f in enumerate(FEATURES)),
        description=f"The largest baseline drift of endpoint {project.model}'s inputs exceeds {DRIFT_THRESHOLD}: "
                    f"starts pipeline {project.pipeline}", tags=project.tags)
    limit = baselined_rmse_limit(project, clients=clients) or DEFAULT_RMSE_ALARM
    rmse = MetricAlarm(
        name=rmse_name, namespace=MODEL_METRICS_NAMESPACE, threshold=limit,
        dimensions=dimensions(MODEL_QUALITY), metric_name="rmse",
        description=f"The RMSE of endpoint {project.model} on ground truth exceeds {limit}: starts pipeline "
                    f"{project.pipeline}", tags=project.tags)
    return [drift, rmse]


def retrain_rule(project: Project) -> Rule:
    """The rule that starts the pipeline when one of the alarms goes to ALARM."""
    arns = [project.arn("cloudwatch", f"alarm:{name}") for name in alarm_names(project)]
    pattern = {"source": ["aws.cloudwatch"], "detail-type": ["CloudWatch Alarm State Change"], "resources": arns,
               "detail": {"state": {"value": ["ALARM"]}}}
    target = Target("pipeline", project.arn("codepipeline", project.pipeline), project.role_arn("events"))
    return Rule(project.retrain_rule, pattern, (target,),
                f"Model monitoring alarms of endpoint {project.model} start pipeline {project.pipeline}",
                project.tags)


def widen_quality_limits(project: Project, *, clients: Clients | None = None) -> None:
    """Set the model-quality baseline's limits to errors RMSE_HEADROOM larger than baselined (rmse and mae times
    1 + headroom, mse times its square, r2 lowered to match that mse), computed from statistics.json so a re-run
    writes the same."""
    folder = baseline_uri(project, MODEL_QUALITY)
    metrics = read_json(f"{folder}/statistics.json", clients=clients)["regression_metrics"]
    constraints = read_json(f"{folder}/constraints.json", clients=clients)
    factor = 1 + RMSE_HEADROOM
    limits = {"rmse": metrics["rmse"]["value"] * factor, "mae": metrics["mae"]["value"] * factor,
              "mse": metrics["mse"]["value"] * factor ** 2, "r2": 1 - (1 - metrics["r2"]["value"]) * factor ** 2}
    for name, constraint in constraints["regression_constraints"].items():
        if name in limits:
            constraint["threshold"] = round(float(limits[name]), 4)
    write_json(f"{folder}/constraints.json", constraints, clients=clients)


def start_baselines(project: Project, execution_id: str, *, wait: bool = True, retry_failed: bool = False,
                    clients: Clients | None = None) -> dict[str, str]:
    """Both baselines of the release ``execution_id`` (data quality over its training rows, model quality over
    its test predictions), waited for; then the RMSE alarm follows the new model-quality limit. Re-runs attach
    to the jobs of the same release. Returns monitoring type -> baseline folder."""
    clients = resolve(clients)
    datasets = {DATA_QUALITY: data_quality_dataset(project, execution_id, clients=clients),
                MODEL_QUALITY: model_quality_dataset(project, execution_id)}
    jobs = {kind: start_baseline_job(baseline_spec(project, kind, dataset, execution_id), clients=clients,
                                     retry_failed=retry_failed).name for kind, dataset in datasets.items()}
    if wait:
        for job in jobs.values():
            wait_job(PROCESSING, job, clients=clients, log_lines=20)
        widen_quality_limits(project, clients=clients)
        for alarm in alarms(project, clients=clients):
            ensure_alarm(alarm, clients=clients)
    return {kind: baseline_uri(project, kind) for kind in jobs}


def ensure_schedules(project: Project, *, schedule_expression: str | None = None,
                     clients: Clients | None = None) -> list[Ensured]:
    """Both schedules on the project's endpoint (their baselines must exist: AwsResourceError otherwise)."""
    results = []
    for kind in SCHEDULE_SUFFIX:
        require_baseline(baseline_uri(project, kind), kind, clients=clients)
        results.append(ensure_monitoring_schedule(monitor_spec(project, kind, schedule_expression=schedule_expression),
                                                  clients=clients))
    return results
