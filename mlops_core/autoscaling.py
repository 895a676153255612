"""Application Auto Scaling of SageMaker endpoint variants: target tracking on invocations per instance."""

from __future__ import annotations

from typing import Any

from mlops_core.aws import Clients, error_code, is_not_found, resolve
from mlops_core.ensure import Action, Ensured, delete_tolerant
from mlops_core.logs import get_logger

NAMESPACE = "sagemaker"
DIMENSION = "sagemaker:variant:DesiredInstanceCount"
METRIC = "SageMakerVariantInvocationsPerInstance"

log = get_logger("autoscaling")


def variant_resource_id(endpoint_name: str, variant: str = "AllTraffic") -> str:
    return f"endpoint/{endpoint_name}/variant/{variant}"


def policy_name(endpoint_name: str, variant: str = "AllTraffic") -> str:
    return f"{endpoint_name}-{variant}-invocations"


def _where(resource: str) -> dict:
    return {"ServiceNamespace": NAMESPACE, "ScalableDimension": DIMENSION, "ResourceId": resource}


def _target(client: Any, resource: str) -> dict | None:
    """The registered scalable target of ``resource``, or None."""
    where = _where(resource)
    found = client.describe_scalable_targets(ResourceIds=[where.pop("ResourceId")], **where)["ScalableTargets"]
    return found[0] if found else None


def _policy(client: Any, name: str, resource: str) -> dict | None:
    """The scaling policy ``name`` of ``resource``, or None."""
    found = client.describe_scaling_policies(PolicyNames=[name], **_where(resource))["ScalingPolicies"]
    return found[0] if found else None


def ensure_endpoint_autoscaling(endpoint_name: str, variant: str = "AllTraffic", *, min_capacity: int = 2,
                                max_capacity: int = 10, target_invocations: float = 750.0,
                                scale_in_cooldown_s: int = 300, scale_out_cooldown_s: int = 60,
                                clients: Clients | None = None) -> list[Ensured]:
    """Register the variant as a scalable target and put a target-tracking policy on it, each only if needed."""
    client = resolve(clients).application_autoscaling
    resource = variant_resource_id(endpoint_name, variant)
    where = _where(resource)
    wanted = {"MinCapacity": min_capacity, "MaxCapacity": max_capacity}
    current_target = _target(client, resource)
    if current_target and {k: current_target[k] for k in wanted} == wanted:
        target = Ensured(Action.UNCHANGED, "scalable target", resource)
    else:
        client.register_scalable_target(**where, **wanted)
        target = Ensured(Action.UPDATED if current_target else Action.CREATED, "scalable target", resource,
                         details=wanted)
        log.info("scalable_target_registered", resource=resource, **wanted)

    name = policy_name(endpoint_name, variant)
    configuration = {"TargetValue": float(target_invocations),
                     "PredefinedMetricSpecification": {"PredefinedMetricType": METRIC},
                     "ScaleInCooldown": scale_in_cooldown_s, "ScaleOutCooldown": scale_out_cooldown_s}
    policy = _policy(client, name, resource)
    current = policy.get("TargetTrackingScalingPolicyConfiguration") if policy else None
    if current is not None and {k: current.get(k) for k in configuration} == configuration:
        return [target, Ensured(Action.UNCHANGED, "scaling policy", name)]
    arn = client.put_scaling_policy(PolicyName=name, PolicyType="TargetTrackingScaling",
                                    TargetTrackingScalingPolicyConfiguration=configuration, **where)["PolicyARN"]
    log.info("scaling_policy_put", policy=name, target=target_invocations)
    return [target, Ensured(Action.UPDATED if policy else Action.CREATED, "scaling policy", name, arn)]


def delete_endpoint_autoscaling(endpoint_name: str, variant: str = "AllTraffic", *,
                                clients: Clients | None = None) -> list[Ensured]:
    """Delete the policy and deregister the target; ABSENT for what is already gone."""
    client = resolve(clients).application_autoscaling
    resource = variant_resource_id(endpoint_name, variant)
    name = policy_name(endpoint_name, variant)
    return [delete_tolerant("scaling policy", name, client.delete_scaling_policy, PolicyName=name, gone=_gone,
                            exists=lambda: _policy(client, name, resource) is not None, **_where(resource)),
            delete_tolerant("scalable target", resource, client.deregister_scalable_target, gone=_gone,
                            exists=lambda: _target(client, resource) is not None, **_where(resource))]


def _gone(exc: BaseException) -> bool:
    """Not found: ObjectNotFoundException on AWS (moto answers ValidationException "No ... found")."""
    message = str(getattr(exc, "response", {}).get("Error", {}).get("Message", "")).lower()
    return is_not_found(exc) or (error_code(exc) == "ValidationException" and message.startswith("no "))
