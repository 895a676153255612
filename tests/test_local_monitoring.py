"""Model Monitor in the embedded AWS on the real data: the analyzer's baselines of a release's training rows,
both schedules, executions run on request over what the endpoint captured since the last one, violations by
feature, the model-quality RMSE on ground truth, and the alarm -> rule -> pipeline loop."""

from __future__ import annotations

import json
import random

import pytest

from mlops_core.aws import Clients
from mlops_core.local.monitoring import pattern_matches
from mlops_core.project import Project, bootstrap
from mlops_core.project import monitoring as plan
from mlops_core.s3 import s3_uri
from mlops_core.sagemaker import monitoring
from mlops_core.sagemaker.capture import read_capture, write_capture
from mlops_core.sagemaker.monitoring import DATA_QUALITY, MODEL_QUALITY
from workflows.data import abalone_data
from workflows.local_monitoring import run_monitors as run

pytestmark = pytest.mark.slow
CAPTURE = {"EnableCapture": True, "InitialSamplingPercentage": 100, "DestinationS3Uri": "",
           "CaptureOptions": [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}]}


def real_rows() -> list[list[str]]:
    return [line.split(",") for line in abalone_data(None).read_text().split() if line]


def scaled(rows, factor: float, columns=(1, 2)) -> list[list[str]]:
    return [[f"{float(v) * factor:.4f}" if i in columns else v for i, v in enumerate(row)] for row in rows]


def capture(aws_s3, rows, round_name: str, error_sd: float, rng: random.Random, config: dict) -> dict[str, str]:
    """What the endpoint would capture for ``rows``: the model's answer is the label plus noise of ``error_sd``."""
    labels = {}
    for number, row in enumerate(rows):
        answer = {"predictions": [{"rings": float(row[8]) + rng.gauss(0, error_sd)}]}
        inference_id = f"{round_name}-{number}"
        write_capture(aws_s3, "abalone", "AllTraffic", config, ",".join(row[:8]).encode(), "text/csv",
                      json.dumps(answer).encode(), "application/json", inference_id)
        labels[inference_id] = row[8]
    return labels


def test_the_monitors_find_drift_on_the_drifted_features_only_and_the_alarm_starts_the_pipeline(local_env, local_aws):
    clients = Clients()
    project = Project(name="abalone", account_id=clients.account_id(), region="us-east-1", tls_only=False)
    bootstrap(project, clients=clients)
    rng = random.Random(3)
    rows = real_rows()
    rng.shuffle(rows)
    training, testing = rows[:3300], rows[3300:]
    s3 = clients.s3
    s3.put_object(Bucket=project.bucket, Key="abalone/r1/preprocess/training/training.csv",
                  Body="\n".join(",".join(r) for r in training).encode())
    predictions = "prediction,label\n" + "".join(f"{float(r[8]) + rng.gauss(0, 2.0):.4f},{r[8]}\n" for r in testing)
    s3.put_object(Bucket=project.bucket, Key="abalone/r1/evaluation/predictions.csv", Body=predictions.encode())

    baselines = plan.start_baselines(project, "r1", clients=clients)
    statistics = json.loads(s3.get_object(Bucket=project.bucket, Key=baselines[DATA_QUALITY].split("/", 3)[3]
                                          + "/statistics.json")["Body"].read())
    assert [f["name"] for f in statistics["features"]] == list(plan.FEATURES)
    limit = plan.baselined_rmse_limit(project, clients=clients)
    rmse = json.loads(s3.get_object(Bucket=project.bucket, Key=baselines[MODEL_QUALITY].split("/", 3)[3]
                                    + "/statistics.json")["Body"].read())["regression_metrics"]["rmse"]["value"]
    assert 1.8 < rmse < 2.2 and limit == round(rmse * (1 + plan.RMSE_HEADROOM), 4)
    assert clients.cloudwatch.describe_alarms(AlarmNames=["abalone-model-quality-rmse"])["MetricAlarms"][0][
        "Threshold"] == limit

    # the endpoint as moto knows it, with data capture; its traffic is written as SageMaker captures it
    config = {**CAPTURE, "DestinationS3Uri": s3_uri(project.bucket, "abalone", "data-capture")}
    moto = local_aws.gateway.passthrough_client("sagemaker", "us-east-1")
    moto.create_model(ModelName="abalone-model-r1", ExecutionRoleArn=project.role_arn("sagemaker"),
                      PrimaryContainer={"Image": f"{project.image_repository_uri}:r1-serve"})
    moto.create_endpoint_config(EndpointConfigName="abalone-config-r1", DataCaptureConfig=config, ProductionVariants=[
        {"VariantName": "AllTraffic", "ModelName": "abalone-model-r1", "InitialInstanceCount": 1,
         "InstanceType": "ml.m5.large"}])
    moto.create_endpoint(EndpointName="abalone", EndpointConfigName="abalone-config-r1")
    plan.ensure_schedules(project, clients=clients)

    labels = capture(s3, rng.sample(testing, 300), "normal", 2.0, rng, config)
    monitoring.upload_ground_truth(plan.ground_truth_uri(project), labels, clients=clients)
    normal = run(project, local_env["AWS_ENDPOINT_URL"], clients)
    assert normal[DATA_QUALITY].status == "Completed" and normal[DATA_QUALITY].violations == ()
    assert normal[MODEL_QUALITY].status == "Completed", normal[MODEL_QUALITY].violations
    assert {r.inference_id for r in read_capture(config["DestinationS3Uri"], "abalone", clients=clients)} == set(labels)

    labels = capture(s3, scaled(rng.sample(testing, 300), 1.3), "drifted", 4.0, rng, config)
    monitoring.upload_ground_truth(plan.ground_truth_uri(project), labels, clients=clients)
    drifted = run(project, local_env["AWS_ENDPOINT_URL"], clients)
    assert drifted[DATA_QUALITY].status == "CompletedWithViolations"
    drift = {v.feature for v in drifted[DATA_QUALITY].violations if v.check == "baseline_drift_check"}
    assert drift == {"length", "diameter"}
    assert {v.feature for v in drifted[MODEL_QUALITY].violations} >= {"rmse"}
    alarms = {a["AlarmName"]: a["StateValue"] for a in clients.cloudwatch.describe_alarms()["MetricAlarms"]}
    assert alarms == {"abalone-feature-drift": "ALARM", "abalone-model-quality-rmse": "ALARM"}
    executions = clients.codepipeline.list_pipeline_executions(pipelineName="abalone")["pipelineExecutionSummaries"]
    assert len(executions) >= 1  # the rule started the pipeline (once per alarm that fired)


def test_event_patterns_match_as_eventbridge_does():
    pattern = {"source": ["aws.cloudwatch"], "resources": ["arn:a", "arn:b"], "detail": {"state": {"value": ["ALARM"]}}}
    event = {"source": "aws.cloudwatch", "resources": ["arn:b"], "detail": {"state": {"value": "ALARM"}, "x": 1}}
    assert pattern_matches(pattern, event)
    assert not pattern_matches(pattern, {**event, "resources": ["arn:c"]})
    assert not pattern_matches(pattern, {**event, "detail": {"state": {"value": "OK"}}})
    assert not pattern_matches(pattern, {"source": "aws.cloudwatch"})
