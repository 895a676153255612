import pytest

from mlops_core.ensure import Action
from mlops_core.errors import DeploymentRolledBack, ResourceFailed
from mlops_core.sagemaker.endpoints import (
    DataCapture,
    blue_green,
    cleanup_superseded,
    delete_endpoint,
    delete_endpoint_config,
    delete_model,
    deploy,
    deploy_model,
    ensure_endpoint_config,
    ensure_model,
)
from mlops_core.testing import VirtualClock
from tests.fakes import IMAGE_URI, NOW, ROLE_ARN

MODEL_DATA = "s3://abalone-bucket/abalone/e1/model/abalone-Train-e1/output/model.tar.gz"
CAPTURE = DataCapture("s3://abalone-bucket/abalone/data-capture")
ENDPOINT = "abalone"
ARN = f"arn:aws:sagemaker:eu-west-1:123456789012:endpoint/{ENDPOINT}"


def model_and_config(aws, model_data=MODEL_DATA, instance_count=2):
    model = ensure_model("abalone-model", IMAGE_URI, model_data, ROLE_ARN, clients=aws)
    config = ensure_endpoint_config("abalone-config", model.name, instance_count=instance_count,
                                    data_capture=CAPTURE, clients=aws)
    return model, config


def test_ensure_model_creates_then_leaves_alone(aws, recorder):
    first = ensure_model("abalone-model", IMAGE_URI, MODEL_DATA, ROLE_ARN, clients=aws)
    assert first.action is Action.CREATED and first.name.startswith("abalone-model-") and first.arn
    recorder.clear()
    second = ensure_model("abalone-model", IMAGE_URI, MODEL_DATA, ROLE_ARN, clients=aws)
    assert (second.action, second.name) == (Action.UNCHANGED, first.name) and recorder.mutating == []
    other = ensure_model("abalone-model", IMAGE_URI, MODEL_DATA.replace("e1", "e2"), ROLE_ARN, clients=aws)
    assert other.action is Action.CREATED and other.name != first.name  # models are immutable: a new name


def test_ensure_endpoint_config_with_data_capture(aws, recorder):
    model, config = model_and_config(aws)
    assert config.action is Action.CREATED
    described = aws.sagemaker.describe_endpoint_config(EndpointConfigName=config.name)
    capture = described["DataCaptureConfig"]
    assert capture["InitialSamplingPercentage"] == 100 and capture["EnableCapture"] is True
    assert capture["DestinationS3Uri"] == "s3://abalone-bucket/abalone/data-capture"
    assert capture["CaptureOptions"] == [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}]
    assert capture["CaptureContentTypeHeader"] == {"CsvContentTypes": ["text/csv"],
                                                   "JsonContentTypes": ["application/json"]}
    variant = described["ProductionVariants"][0]
    assert (variant["ModelName"], variant["InstanceType"], variant["InitialInstanceCount"]) == (
        model.name, "ml.m5.large", 2)
    recorder.clear()
    _, again = model_and_config(aws)
    assert again.action is Action.UNCHANGED and again.name == config.name and recorder.mutating == []
    _, changed = model_and_config(aws, instance_count=3)
    assert changed.action is Action.CREATED and changed.name != config.name


def test_data_capture_options():
    request = DataCapture("s3://b/c", 20, capture_output=False, kms_key_id="key").request()
    assert request["CaptureOptions"] == [{"CaptureMode": "Input"}] and request["KmsKeyId"] == "key"
    assert request["InitialSamplingPercentage"] == 20


def test_deploy_creates_then_reports_unchanged(aws, recorder):
    _, config = model_and_config(aws)
    created = deploy(ENDPOINT, config.name, clients=aws)
    assert created.action is Action.CREATED and created.details["config"] == config.name
    recorder.clear()
    again = deploy(ENDPOINT, config.name, clients=aws)
    assert again.action is Action.UNCHANGED and recorder.mutating == []


def test_deploy_model_twice_changes_nothing_the_second_time(aws, recorder):
    first = deploy_model(ENDPOINT, IMAGE_URI, MODEL_DATA, ROLE_ARN, instance_count=2, data_capture=CAPTURE,
                         clients=aws)
    assert [first.model.action, first.config.action, first.endpoint.action] == [Action.CREATED] * 3
    recorder.clear()
    second = deploy_model(ENDPOINT, IMAGE_URI, MODEL_DATA, ROLE_ARN, instance_count=2, data_capture=CAPTURE,
                          clients=aws)
    assert [second.model.action, second.config.action, second.endpoint.action] == [Action.UNCHANGED] * 3
    assert second.cleaned == () and recorder.mutating == []


def test_delete_functions_tolerate_already_gone(aws, recorder):
    model, config = model_and_config(aws)
    deploy(ENDPOINT, config.name, clients=aws)
    deleted = [delete_endpoint(ENDPOINT, clients=aws), delete_endpoint_config(config.name, clients=aws),
               delete_model(model.name, clients=aws)]
    assert [d.action for d in deleted] == [Action.DELETED] * 3
    recorder.clear()
    again = [delete_endpoint(ENDPOINT, clients=aws), delete_endpoint_config(config.name, clients=aws),
             delete_model(model.name, clients=aws)]
    assert [d.action for d in again] == [Action.ABSENT] * 3
    assert recorder.mutating == []


def test_cleanup_deletes_only_superseded_configs_and_models(aws):
    old_model, old_config = model_and_config(aws, MODEL_DATA.replace("e1", "e0"))
    other_model, other_config = model_and_config(aws, MODEL_DATA.replace("e1", "e9"))
    new_model, new_config = model_and_config(aws)
    deploy(ENDPOINT, new_config.name, clients=aws)
    deploy("abalone-shadow", other_config.name, clients=aws)  # another endpoint still uses this one
    cleaned = cleanup_superseded(ENDPOINT, config_prefix="abalone-config-", model_prefix="abalone-model-", clients=aws)
    assert {(c.kind, c.name, c.action) for c in cleaned} == {
        ("endpoint config", old_config.name, Action.DELETED), ("model", old_model.name, Action.DELETED)}
    configs = {c["EndpointConfigName"] for c in aws.sagemaker.list_endpoint_configs()["EndpointConfigs"]}
    assert configs == {new_config.name, other_config.name}
    assert cleanup_superseded(ENDPOINT, config_prefix="abalone-config-", model_prefix="abalone-model-",
                              clients=aws) == []


def test_blue_green_deployment_config():
    config = blue_green(canary_percent=10, wait_s=300, alarms=["abalone-5xx"])
    policy = config["BlueGreenUpdatePolicy"]["TrafficRoutingConfiguration"]
    assert policy == {"Type": "CANARY", "WaitIntervalInSeconds": 300, "CanarySize": {"Type": "CAPACITY_PERCENT",
                                                                                       "Value": 10}}
    assert config["AutoRollbackConfiguration"] == {"Alarms": [{"AlarmName": "abalone-5xx"}]}
    assert blue_green()["BlueGreenUpdatePolicy"]["TrafficRoutingConfiguration"]["Type"] == "ALL_AT_ONCE"


# Stubber: endpoint status sequences moto cannot produce (moto has no UpdateEndpoint, no failures)

def endpoint(status, config, reason=None):
    description = {"EndpointName": ENDPOINT, "EndpointArn": f"arn:aws:sagemaker:eu-west-1:1:endpoint/{ENDPOINT}",
                   "EndpointConfigName": config, "EndpointStatus": status, "CreationTime": NOW,
                   "LastModifiedTime": NOW}
    if reason:
        description["FailureReason"] = reason
    return description


def describes(stubber, *descriptions):
    for description in descriptions:
        stubber.add_response("describe_endpoint", description, {"EndpointName": ENDPOINT})


def test_creating_then_failed_raises_with_reason(stubbed):
    clients, stubber = stubbed
    stubber.add_client_error("describe_endpoint", "ValidationException", "Could not find endpoint")
    stubber.add_response("create_endpoint", {"EndpointArn": ARN},
                         {"EndpointName": ENDPOINT, "EndpointConfigName": "new", "Tags": []})
    describes(stubber, endpoint("Creating", "new"),
              endpoint("Failed", "new", "The primary container for production variant AllTraffic did not pass "
                                        "the ping health check"))
    with pytest.raises(ResourceFailed) as info:
        deploy(ENDPOINT, "new", clients=clients, clock=VirtualClock())
    assert info.value.status == "Failed" and "ping health check" in str(info.value)
    assert "/aws/sagemaker/Endpoints/abalone" in str(info.value)


def test_update_that_comes_back_in_service_on_the_old_config_raises(stubbed):
    clients, stubber = stubbed
    describes(stubber, endpoint("InService", "old"))
    stubber.add_response("update_endpoint", {"EndpointArn": ARN},
                         {"EndpointName": ENDPOINT, "EndpointConfigName": "new"})
    describes(stubber, endpoint("Updating", "old"), endpoint("RollingBack", "old"),
              endpoint("InService", "old", "Variant AllTraffic: health check failed"))
    with pytest.raises(DeploymentRolledBack) as info:
        deploy(ENDPOINT, "new", clients=clients, clock=VirtualClock())
    error = info.value
    assert (error.wanted_config, error.running_config) == ("new", "old")
    assert "health check failed" in str(error) and "rolled back" in str(error)


def test_update_with_blue_green_deployment_config(stubbed):
    clients, stubber = stubbed
    deployment = blue_green(canary_percent=10, alarms=["abalone-errors"])
    describes(stubber, endpoint("InService", "old"))
    stubber.add_response("update_endpoint", {"EndpointArn": ARN},
                         {"EndpointName": ENDPOINT, "EndpointConfigName": "new", "DeploymentConfig": deployment})
    describes(stubber, endpoint("Updating", "old"), endpoint("InService", "new"))
    done = deploy(ENDPOINT, "new", deployment_config=deployment, clients=clients, clock=VirtualClock())
    assert (done.action, done.details["previous_config"]) == (Action.UPDATED, "old")


def test_rerun_during_an_update_waits_for_it_instead_of_updating_again(stubbed):
    clients, stubber = stubbed
    describes(stubber, endpoint("Updating", "old"), endpoint("Updating", "old"), endpoint("InService", "new"))
    done = deploy(ENDPOINT, "new", clients=clients, clock=VirtualClock())
    assert done.action is Action.UNCHANGED  # no update_endpoint call was queued, so none was made


def test_a_failed_endpoint_is_not_updated(stubbed):
    clients, stubber = stubbed
    describes(stubber, endpoint("Failed", "old", "capacity error"))
    with pytest.raises(ResourceFailed, match="capacity error.*delete it"):
        deploy(ENDPOINT, "new", clients=clients, clock=VirtualClock())


def test_delete_that_loses_a_race_is_absent(stubbed):
    clients, stubber = stubbed
    stubber.add_response("describe_model", {"ModelName": "m", "ModelArn": "arn:aws:sagemaker:eu-west-1:1:model/m",
                                            "CreationTime": NOW}, {"ModelName": "m"})
    stubber.add_client_error("delete_model", "ValidationException", 'Could not find model "m".')
    assert delete_model("m", clients=clients).action is Action.ABSENT
