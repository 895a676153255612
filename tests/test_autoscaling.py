from mlops_core.autoscaling import (
    DIMENSION,
    delete_endpoint_autoscaling,
    ensure_endpoint_autoscaling,
    variant_resource_id,
)
from mlops_core.ensure import Action

ENDPOINT = "abalone"


def actions(results):
    return [r.action for r in results]


def test_ensure_registers_and_puts_policy_once(aws, recorder):
    first = ensure_endpoint_autoscaling(ENDPOINT, clients=aws)
    assert actions(first) == [Action.CREATED, Action.CREATED]
    client = aws.application_autoscaling
    target = client.describe_scalable_targets(ServiceNamespace="sagemaker")["ScalableTargets"][0]
    assert (target["ResourceId"], target["ScalableDimension"], target["MinCapacity"], target["MaxCapacity"]) == (
        variant_resource_id(ENDPOINT), DIMENSION, 2, 10)
    policy = client.describe_scaling_policies(ServiceNamespace="sagemaker")["ScalingPolicies"][0]
    config = policy["TargetTrackingScalingPolicyConfiguration"]
    assert config["TargetValue"] == 750.0
    assert config["PredefinedMetricSpecification"]["PredefinedMetricType"] == "SageMakerVariantInvocationsPerInstance"
    recorder.clear()
    assert actions(ensure_endpoint_autoscaling(ENDPOINT, clients=aws)) == [Action.UNCHANGED, Action.UNCHANGED]
    assert recorder.mutating == []


def test_changed_capacity_or_target_updates_only_what_changed(aws, recorder):
    ensure_endpoint_autoscaling(ENDPOINT, clients=aws)
    recorder.clear()
    assert actions(ensure_endpoint_autoscaling(ENDPOINT, max_capacity=4, clients=aws)) == [
        Action.UPDATED, Action.UNCHANGED]
    assert [op for _, op in recorder.mutating] == ["RegisterScalableTarget"]
    recorder.clear()
    assert actions(ensure_endpoint_autoscaling(ENDPOINT, max_capacity=4, target_invocations=500,
                                               clients=aws)) == [Action.UNCHANGED, Action.UPDATED]
    assert [op for _, op in recorder.mutating] == ["PutScalingPolicy"]


def test_delete_tolerates_already_gone(aws, recorder):
    ensure_endpoint_autoscaling(ENDPOINT, clients=aws)
    assert actions(delete_endpoint_autoscaling(ENDPOINT, clients=aws)) == [Action.DELETED, Action.DELETED]
    assert not aws.application_autoscaling.describe_scalable_targets(ServiceNamespace="sagemaker")["ScalableTargets"]
    recorder.clear()
    assert actions(delete_endpoint_autoscaling(ENDPOINT, clients=aws)) == [Action.ABSENT, Action.ABSENT]
    assert recorder.mutating == []
