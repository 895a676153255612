"""Model monitoring in plain boto3 on moto (job definitions, alarms, rules) and the test kit (monitoring
schedules, which moto lacks): idempotent schedules, the baseline job's request, ground truth in SageMaker's
layout, violations read back, and the alarm -> rule -> pipeline loop that bootstrap creates and teardown removes."""

from __future__ import annotations

import datetime as dt
import json
import re

import pytest

from mlops_core.cloudwatch import MetricAlarm, ensure_alarm
from mlops_core.ensure import Action
from mlops_core.errors import ConfigError
from mlops_core.events import Rule, Target, ensure_rule
from mlops_core.project import Project, bootstrap, teardown
from mlops_core.project import monitoring as plan
from mlops_core.s3 import ensure_bucket, write_json
from mlops_core.sagemaker import monitoring
from mlops_core.sagemaker.monitoring import DATA_QUALITY, MODEL_QUALITY

ACCOUNT = "123456789012"


@pytest.fixture
def project() -> Project:
    return Project(name="abalone", account_id=ACCOUNT, region="us-east-1", tls_only=False)


def schedule(project: Project, aws, monitoring_type: str = DATA_QUALITY, **changes) -> monitoring.Ensured:
    spec = plan.monitor_spec(project, monitoring_type)
    if changes:
        from dataclasses import replace
        spec = replace(spec, **changes)
    return monitoring.ensure_monitoring_schedule(spec, clients=aws)


def test_the_analyzer_image_comes_from_aws_table_and_unknown_regions_are_refused():
    assert monitoring.analyzer_image_uri("eu-west-1") == (
        "468650794304.dkr.ecr.eu-west-1.amazonaws.com/sagemaker-model-monitor-analyzer")
    assert monitoring.analyzer_image_uri("cn-north-1").endswith(".amazonaws.com.cn/sagemaker-model-monitor-analyzer")
    assert monitoring.is_analyzer_image(monitoring.analyzer_image_uri("us-west-2"))
    assert not monitoring.is_analyzer_image("123456789012.dkr.ecr.us-west-2.amazonaws.com/abalone:v1")
    with pytest.raises(ConfigError, match="xx-nowhere-1"):
        monitoring.analyzer_image_uri("xx-nowhere-1")


def test_a_schedule_is_created_once_and_a_rerun_changes_nothing(aws, recorder, project, monitoring_schedules):
    first = schedule(project, aws)
    assert first.action is Action.CREATED
    assert recorder.names() == ["sagemaker:CreateDataQualityJobDefinition", "sagemaker:CreateMonitoringSchedule"]
    recorder.clear()
    again = schedule(project, aws)
    assert again.action is Action.UNCHANGED and recorder.names() == []
    definition = aws.sagemaker.describe_data_quality_job_definition(JobDefinitionName=first.details["definition"])
    assert definition["DataQualityJobInput"]["EndpointInput"]["EndpointName"] == "abalone"
    assert definition["DataQualityBaselineConfig"]["StatisticsResource"]["S3Uri"] == (
        f"s3://abalone-{ACCOUNT}-us-east-1/abalone/monitoring/baselines/data-quality/statistics.json")
    described = aws.sagemaker.describe_monitoring_schedule(MonitoringScheduleName="abalone-data-quality")
    assert described["MonitoringScheduleConfig"]["ScheduleConfig"]["ScheduleExpression"] == "cron(0 * ? * * *)"


def test_a_changed_definition_gets_a_new_name_and_the_old_one_goes(aws, recorder, project, monitoring_schedules):
    old = schedule(project, aws).details["definition"]
    recorder.clear()
    changed = schedule(project, aws, instance_type="ml.m5.2xlarge")
    assert changed.action is Action.UPDATED and changed.details["changes"] == ["MonitoringJobDefinitionName"]
    assert recorder.names() == ["sagemaker:CreateDataQualityJobDefinition", "sagemaker:UpdateMonitoringSchedule",
                                "sagemaker:DeleteDataQualityJobDefinition"]
    names = [d["MonitoringJobDefinitionName"] for d in
             aws.sagemaker.list_data_quality_job_definitions()["JobDefinitionSummaries"]]
    assert names == [changed.details["definition"]] and old not in names
    recorder.clear()
    hourly_to_daily = schedule(project, aws, instance_type="ml.m5.2xlarge", schedule_expression="cron(0 0 ? * * *)")
    assert hourly_to_daily.details["changes"] == ["ScheduleConfig"]
    assert recorder.names() == ["sagemaker:UpdateMonitoringSchedule"]


def test_model_quality_needs_ground_truth_and_reads_the_prediction_by_jsonpath(aws, project, monitoring_schedules):
    with pytest.raises(ConfigError, match="ground_truth_s3_uri"):
        monitoring.MonitorSpec(schedule_name="x", monitoring_type=MODEL_QUALITY, endpoint="abalone", role_arn="r",
                               region="us-east-1", baseline_s3_uri="s3://b/x", output_s3_uri="s3://b/y")
    created = schedule(project, aws, MODEL_QUALITY)
    definition = aws.sagemaker.describe_model_quality_job_definition(JobDefinitionName=created.details["definition"])
    assert definition["ModelQualityJobInput"]["GroundTruthS3Input"]["S3Uri"].endswith("/abalone/monitoring/ground-truth")
    assert definition["ModelQualityJobInput"]["EndpointInput"]["InferenceAttribute"] == "predictions[0].rings"
    assert definition["ModelQualityAppSpecification"]["ProblemType"] == "Regression"


def test_the_baseline_job_is_the_analyzer_as_a_processing_job(aws, project):
    spec = plan.baseline_spec(project, DATA_QUALITY, f"s3://{project.bucket}/abalone/data/current/", "run1")
    started = monitoring.start_baseline_job(spec, clients=aws)  # botocore validates the request on its model
    assert started.action is Action.CREATED and started.name == "abalone-baseline-dq-run1"
    job = aws.sagemaker.describe_processing_job(ProcessingJobName="abalone-baseline-dq-run1")
    assert job["AppSpecification"]["ImageUri"] == monitoring.analyzer_image_uri("us-east-1")
    environment = spec.job().request()["Environment"]
    assert json.loads(environment["dataset_format"]) == {"csv": {"header": True, "output_columns_position": "START"}}
    assert environment["dataset_source"] == job["ProcessingInputs"][0]["S3Input"]["LocalPath"]
    assert job["ProcessingOutputConfig"]["Outputs"][0]["S3Output"]["S3Uri"] == plan.baseline_uri(project, DATA_QUALITY)
    assert monitoring.start_baseline_job(spec, clients=aws).action is Action.UNCHANGED  # a re-run attaches
    quality = plan.baseline_spec(project, MODEL_QUALITY, f"s3://{project.bucket}/abalone/run1/evaluation/", "run1")
    environment = quality.job().environment
    assert environment["analysis_type"] == "MODEL_QUALITY" and environment["problem_type"] == "Regression"


def test_ground_truth_lands_in_sagemakers_layout_keyed_by_inference_id(aws, project):
    ensure_bucket(project.bucket, tls_only=False, clients=aws)
    when = dt.datetime(2026, 12, 2, 14, 5, tzinfo=dt.timezone.utc)
    uri = monitoring.upload_ground_truth(plan.ground_truth_uri(project), {"id-1": 9, "id-2": 11}, when=when,
                                         clients=aws)
    assert re.fullmatch(rf"s3://{project.bucket}/abalone/monitoring/ground-truth/2026/12/02/14/[0-9a-f-]+\.jsonl", uri)
    key = uri.split("/", 3)[3]
    lines = aws.s3.get_object(Bucket=project.bucket, Key=key)["Body"].read().decode().splitlines()
    assert [json.loads(line) for line in lines] == [
        {"groundTruthData": {"data": "9", "encoding": "CSV"}, "eventMetadata": {"eventId": "id-1"}, "eventVersion": "0"},
        {"groundTruthData": {"data": "11", "encoding": "CSV"}, "eventMetadata": {"eventId": "id-2"}, "eventVersion": "0"}]
    with pytest.raises(ValueError, match="no ground-truth"):
        monitoring.upload_ground_truth(plan.ground_truth_uri(project), {}, clients=aws)


def test_violations_of_the_latest_executions_are_read_as_typed_results(aws, project, monitoring_schedules):
    ensure_bucket(project.bucket, tls_only=False, clients=aws)
    schedule(project, aws)
    report = f"s3://{project.bucket}/abalone/monitoring/reports/abalone/abalone-data-quality/2026/12/02/14"
    job = monitoring.BaselineSpec(name="abalone-data-quality-20261202140000", role_arn=project.role_arn("sagemaker"),
                                  region="us-east-1", dataset_s3_uri="s3://x/in", output_s3_uri=report).job()
    arn = monitoring.start_job(job, clients=aws).arn
    write_json(f"{report}/constraint_violations.json", {"violations": [
        {"feature_name": "length", "constraint_check_type": "baseline_drift_check",
         "description": "Baseline drift distance: 0.41 exceeds threshold: 0.1"}]}, clients=aws)
    monitoring_schedules.add_execution("abalone-data-quality", "Completed")
    monitoring_schedules.add_execution("abalone-data-quality", "CompletedWithViolations", processing_job_arn=arn)
    latest, previous = monitoring.latest_executions("abalone-data-quality", clients=aws)
    assert latest.status == "CompletedWithViolations" and latest.has_violations and latest.report_s3_uri == report
    assert latest.violations == (monitoring.Violation("length", "baseline_drift_check",
                                                      "Baseline drift distance: 0.41 exceeds threshold: 0.1"),)
    assert previous.violations == () and not previous.has_violations
    assert monitoring.parse_violations({"violations": [{"metric_name": "rmse", "constraint_check_type":
                                                        "GreaterThanThreshold", "description": "d"}]}) == [
        monitoring.Violation("rmse", "GreaterThanThreshold", "d")]


def test_alarms_and_rules_are_created_once_and_updated_when_they_differ(aws, recorder):
    alarm = MetricAlarm(name="a", namespace="/aws/sagemaker/Endpoints/model-metrics", threshold=3.0,
                        dimensions={"Endpoint": "abalone"}, metric_name="rmse")
    assert ensure_alarm(alarm, clients=aws).action is Action.CREATED
    recorder.clear()
    assert ensure_alarm(alarm, clients=aws).action is Action.UNCHANGED and recorder.names() == []
    from dataclasses import replace
    updated = ensure_alarm(replace(alarm, threshold=2.5), clients=aws)
    assert updated.action is Action.UPDATED and updated.details["changes"] == ["Threshold"]
    rule = Rule("r", {"source": ["aws.cloudwatch"]}, (Target("t", "arn:aws:codepipeline:us-east-1:1:p", "arn:role"),))
    assert ensure_rule(rule, clients=aws).action is Action.CREATED
    recorder.clear()
    assert ensure_rule(rule, clients=aws).action is Action.UNCHANGED and recorder.names() == []
    moved = ensure_rule(replace(rule, targets=(Target("u", "arn:aws:codepipeline:us-east-1:1:q", "arn:role"),)),
                        clients=aws)
    assert moved.details["changes"] == ["targets"]
    assert recorder.names() == ["events:RemoveTargets", "events:PutTargets"]
    assert [t["Id"] for t in aws.events.list_targets_by_rule(Rule="r")["Targets"]] == ["u"]


def test_bootstrap_wires_the_alarms_to_a_rule_that_starts_the_pipeline(aws, project):
    bootstrap(project, clients=aws)
    alarms = {a["AlarmName"]: a for a in aws.cloudwatch.describe_alarms()["MetricAlarms"]}
    assert set(alarms) == {"abalone-feature-drift", "abalone-model-quality-rmse"}
    drift = alarms["abalone-feature-drift"]
    metrics = [m["MetricStat"]["Metric"]["MetricName"] for m in drift["Metrics"] if "MetricStat" in m]
    assert metrics == [f"feature_baseline_drift_{f}" for f in plan.FEATURES]
    assert alarms["abalone-model-quality-rmse"]["Threshold"] == plan.DEFAULT_RMSE_ALARM  # no baseline yet
    rule = aws.events.describe_rule(Name="abalone-retrain-on-alarm")
    pattern = json.loads(rule["EventPattern"])
    assert sorted(pattern["resources"]) == sorted(a["AlarmArn"] for a in alarms.values())
    assert pattern["detail"] == {"state": {"value": ["ALARM"]}}
    (target,) = aws.events.list_targets_by_rule(Rule="abalone-retrain-on-alarm")["Targets"]
    assert target["Arn"] == f"arn:aws:codepipeline:us-east-1:{ACCOUNT}:abalone"
    assert target["RoleArn"] == f"arn:aws:iam::{ACCOUNT}:role/abalone-events"
    policy = aws.iam.get_role_policy(RoleName="abalone-events", PolicyName="least-privilege")["PolicyDocument"]
    assert [(s["Action"], s["Resource"]) for s in policy["Statement"]] == [
        (["codepipeline:StartPipelineExecution"], [target["Arn"]])]
    trust = aws.iam.get_role(RoleName="abalone-events")["Role"]["AssumeRolePolicyDocument"]["Statement"][0]
    assert trust["Principal"] == {"Service": "events.amazonaws.com"}
    assert trust["Condition"]["ArnLike"]["aws:SourceArn"] == [rule["Arn"]]


def test_a_model_quality_baseline_sets_the_rmse_alarm_and_bootstrap_keeps_it(aws, recorder, project):
    bootstrap(project, clients=aws)
    write_json(f"{plan.baseline_uri(project, MODEL_QUALITY)}/constraints.json", {"version": 0.0,
               "regression_constraints": {"rmse": {"threshold": 2.4, "comparison_operator": "GreaterThanThreshold"}}},
               clients=aws)
    assert [r.name for r in bootstrap(project, clients=aws) if r.changed] == ["abalone-model-quality-rmse"]
    assert aws.cloudwatch.describe_alarms(AlarmNames=["abalone-model-quality-rmse"])["MetricAlarms"][0][
        "Threshold"] == 2.4
    recorder.clear()
    bootstrap(project, clients=aws)
    assert recorder.mutating == []


def test_teardown_removes_schedules_definitions_alarms_rule_and_role(aws, project, monitoring_schedules):
    bootstrap(project, clients=aws)
    schedule(project, aws)
    schedule(project, aws, MODEL_QUALITY)
    results = teardown(project, delete_data=True, clients=aws)
    deleted = {(r.kind, r.name) for r in results if r.action is Action.DELETED}
    assert {("monitoring schedule", "abalone-data-quality"), ("monitoring schedule", "abalone-model-quality"),
            ("eventbridge rule", "abalone-retrain-on-alarm"), ("cloudwatch alarm", "abalone-feature-drift"),
            ("iam role", "abalone-events")} <= deleted
    assert monitoring_schedules.schedules == {}
    assert aws.sagemaker.list_data_quality_job_definitions()["JobDefinitionSummaries"] == []
    assert aws.sagemaker.list_model_quality_job_definitions()["JobDefinitionSummaries"] == []
    assert aws.cloudwatch.describe_alarms()["MetricAlarms"] == []
    assert aws.events.list_rules()["Rules"] == []
    again = teardown(project, delete_data=True, clients=aws)
    assert {r.action for r in again} == {Action.ABSENT}


def test_every_request_matches_botocores_service_model(project):
    import botocore.session
    from botocore.validate import validate_parameters

    model = botocore.session.get_session().get_service_model("sagemaker")

    def check(operation: str, request: dict) -> None:
        validate_parameters(request, model.operation_model(operation).input_shape)  # raises on any mismatch

    baseline = plan.baseline_spec(project, DATA_QUALITY, "s3://b/abalone/monitoring/baseline-input/r1/x.csv", "r1")
    check("CreateProcessingJob", baseline.job().request())
    check("CreateProcessingJob", plan.baseline_spec(project, MODEL_QUALITY, "s3://b/p.csv", "r1").job().request())
    for kind, operation in ((DATA_QUALITY, "CreateDataQualityJobDefinition"),
                            (MODEL_QUALITY, "CreateModelQualityJobDefinition")):
        spec = plan.monitor_spec(project, kind)
        check(operation, {"JobDefinitionName": spec.definition_name, **spec.definition()})
        check("CreateMonitoringSchedule", {"MonitoringScheduleName": spec.schedule_name, "MonitoringScheduleConfig": {
            "ScheduleConfig": {"ScheduleExpression": spec.schedule_expression},
            "MonitoringJobDefinitionName": spec.definition_name, "MonitoringType": kind}})
    from botocore.exceptions import ParamValidationError
    with pytest.raises(ParamValidationError):  # the check itself can fail
        check("CreateMonitoringSchedule", {"MonitoringScheduleName": "x", "MonitoringScheduleConfig": {"Bogus": 1}})
