"""The monitoring round of ``bin/demo --monitor``: after a deploy, baseline the release, schedule both monitors,
send normal traffic (real rows) and then drifted traffic (synthetic survey rows with lengths and diameters
scaled up), each with ground truth keyed by inference id, run the monitors, and report what they found:
violations by feature, the model-quality RMSE, the alarms, and the pipeline execution the alarm started.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from pathlib import Path

from mlops_core.aws import Clients
from mlops_core.local.monitoring import run_schedules_now
from mlops_core.project import Project
from mlops_core.project import monitoring as plan
from mlops_core.s3 import read_json_if_exists
from mlops_core.sagemaker import monitoring
from mlops_core.sagemaker.monitoring import DATA_QUALITY, MODEL_QUALITY
from model_container.schema import COLUMNS
from workflows.synthetic import generate, read_rows

DRIFT = {"length": 1.3, "diameter": 1.3}  # the measurements the drifted survey scales


def drifted(rows: Sequence[Sequence], factors: dict[str, float]) -> list[list[str]]:
    """``rows`` with the named measurements multiplied by their factors."""
    scale = [factors.get(name, 1.0) for name in COLUMNS]
    return [[f"{float(value) * factor:.4f}" if factor != 1.0 else str(value) for value, factor in
             zip(row, scale, strict=True)] for row in rows]


def send(endpoint: str, rows: Sequence[Sequence], round_name: str, clients: Clients) -> dict[str, str]:
    """One request per row with its own InferenceId; inference id -> the row's rings (the ground truth)."""
    labels = {}
    for number, row in enumerate(rows):
        inference_id = f"{round_name}-{number:05d}"
        clients.sagemaker_runtime.invoke_endpoint(EndpointName=endpoint, ContentType="text/csv",
                                                  Accept="application/json", InferenceId=inference_id,
                                                  Body=",".join(map(str, row[:8])))
        labels[inference_id] = str(row[8])
    return labels


def run_monitors(project: Project, endpoint_url: str, clients: Clients) -> dict[str, monitoring.Execution]:
    """Run both schedules now (the embedded AWS's stand-in for the hourly run) and wait for them."""
    kinds = list(plan.SCHEDULE_SUFFIX)
    executions = run_schedules_now(endpoint_url, [plan.schedule_name(project, kind) for kind in kinds], clients=clients)
    return dict(zip(kinds, executions, strict=True))


def traffic_round(project: Project, round_name: str, rows: Sequence[Sequence], endpoint_url: str, clients: Clients,
                  echo: Callable[[str], None]) -> dict:
    labels = send(project.model, rows, round_name, clients)
    monitoring.upload_ground_truth(plan.ground_truth_uri(project), labels, clients=clients)
    executions = run_monitors(project, endpoint_url, clients)
    quality = executions[MODEL_QUALITY]
    statistics = read_json_if_exists(f"{quality.report_s3_uri}/statistics.json", clients=clients) or {}
    metrics = statistics.get("regression_metrics", {})
    alarms = {a["AlarmName"]: a["StateValue"] for a in clients.cloudwatch.describe_alarms(
        AlarmNames=list(plan.alarm_names(project)))["MetricAlarms"]}
    report = {"round": round_name, "requests": len(rows),
              "data_quality": {"status": executions[DATA_QUALITY].status, "violations": [
                  vars(v) for v in executions[DATA_QUALITY].violations]},
              "model_quality": {"status": quality.status, **{name: metrics[name]["value"] for name in
                                                             ("rmse", "mae", "r2") if name in metrics},
                                "violations": [vars(v) for v in quality.violations]},
              "alarms": alarms}
    echo(f"monitoring, {round_name} traffic ({len(rows)} requests with ground truth): data quality "
         f"{report['data_quality']['status']}, model quality {quality.status}"
         + (f" (RMSE {metrics['rmse']['value']:.3f})" if "rmse" in metrics else ""))
    for violation in (*executions[DATA_QUALITY].violations, *quality.violations):
        echo(f"  violation {violation.feature}: {violation.check}: {violation.description}")
    echo("  alarms: " + ", ".join(f"{name} {state}" for name, state in sorted(alarms.items())))
    return report


def monitoring_round(project: Project, execution_id: str, data: Path, endpoint_url: str, clients: Clients,
                     echo: Callable[[str], None], *, rows: int = 300, seed: int = 7) -> dict:
    """Baselines, schedules, a normal and a drifted round; the summary's ``monitoring`` section. Its
    ``retraining`` names the pipeline execution the alarm's rule started (or None)."""
    baselines = plan.start_baselines(project, execution_id, clients=clients)
    echo(f"monitoring: baselines of release {execution_id} in {', '.join(u + '/' for u in baselines.values())}")
    for ensured in plan.ensure_schedules(project, clients=clients):
        echo(f"monitoring: schedule {ensured.name} {ensured.action.value} (definition {ensured.details['definition']})")
    real = read_rows(data.read_text())
    before = {e["pipelineExecutionId"] for e in
              clients.codepipeline.list_pipeline_executions(pipelineName=project.pipeline)["pipelineExecutionSummaries"]}
    normal = traffic_round(project, "normal", random.Random(seed).sample(real, rows), endpoint_url, clients, echo)
    shifted = traffic_round(project, "drifted", drifted(generate(real, rows, seed), DRIFT), endpoint_url, clients, echo)
    started = [e["pipelineExecutionId"] for e in clients.codepipeline.list_pipeline_executions(
        pipelineName=project.pipeline)["pipelineExecutionSummaries"] if e["pipelineExecutionId"] not in before]
    retraining = started[0] if started else None
    echo(f"monitoring: the alarm's rule {project.retrain_rule} started pipeline {project.pipeline} execution "
         f"{retraining}" if retraining else "monitoring: no alarm started the pipeline")
    return {"baselines": baselines, "rounds": [normal, shifted], "retraining": retraining}
