"""SageMaker models, endpoint configs and endpoints: ensure, deploy with verification, delete, clean up.

Models and endpoint configs are immutable in SageMaker, so their names end with a hash of their
definition: the same definition gives the same name (left alone), a changed one a new resource.
``deploy`` creates or updates the endpoint, waits until InService and checks that it really runs the
wanted config: SageMaker rolls a failed update back and reports InService, which raises
DeploymentRolledBack here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from mlops_core.aws import Clients, resolve
from mlops_core.ensure import (
    Action,
    Ensured,
    definition_hash,
    delete_tolerant,
    describe_or_none,
    is_already_exists,
    tag_list,
)
from mlops_core.errors import DeploymentRolledBack, ResourceFailed
from mlops_core.logs import get_logger
from mlops_core.naming import resource_name
from mlops_core.polling import DEFAULT_POLICY, ENDPOINT, Clock, WaitPolicy, wait_for
from mlops_core.sagemaker.jobs import VpcConfig

log = get_logger("sagemaker")
DEFAULT_VARIANT = "AllTraffic"


@dataclass(frozen=True)
class DataCapture:
    """Endpoint data capture: which payloads, how many, in which content types, to where."""

    destination_s3_uri: str
    sampling_percentage: int = 100
    capture_input: bool = True
    capture_output: bool = True
    csv_content_types: tuple[str, ...] = ("text/csv",)
    json_content_types: tuple[str, ...] = ("application/json",)
    kms_key_id: str | None = None

    def request(self) -> dict:
        modes = [m for m, on in (("Input", self.capture_input), ("Output", self.capture_output)) if on]
        config: dict[str, Any] = {
            "EnableCapture": True, "InitialSamplingPercentage": self.sampling_percentage,
            "DestinationS3Uri": self.destination_s3_uri,
            "CaptureOptions": [{"CaptureMode": m} for m in modes],
            "CaptureContentTypeHeader": {"CsvContentTypes": list(self.csv_content_types),
                                         "JsonContentTypes": list(self.json_content_types)}}
        if self.kms_key_id:
            config["KmsKeyId"] = self.kms_key_id
        return config


def _ensure_immutable(kind: str, base_name: str, definition: dict, name_key: str, arn_key: str,
                      describe: Callable[..., dict], create: Callable[..., dict],
                      tags: Mapping[str, str] | None) -> Ensured:
    """Create ``definition`` as ``{base_name}-{hash}`` unless a resource of that name exists."""
    name = resource_name(base_name, definition_hash(definition))
    if describe_or_none(describe, **{name_key: name}) is not None:
        return Ensured(Action.UNCHANGED, kind, name)
    request = {name_key: name, **definition, **({"Tags": tag_list(tags)} if tags else {})}
    try:
        response = create(**request)
    except ClientError as exc:
        if is_already_exists(exc):
            return Ensured(Action.UNCHANGED, kind, name)
        raise
    log.info("created", kind=kind, name=name)
    return Ensured(Action.CREATED, kind, name, response.get(arn_key))


def ensure_model(base_name: str, image_uri: str, model_data_url: str, role_arn: str, *,
                 environment: Mapping[str, str] | None = None, vpc: VpcConfig | None = None,
                 network_isolation: bool = False, tags: Mapping[str, str] | None = None,
                 clients: Clients | None = None) -> Ensured:
    """A SageMaker model named ``{base_name}-{hash of its definition}`` serving ``model_data_url``."""
    container: dict[str, Any] = {"Image": image_uri, "ModelDataUrl": model_data_url}
    if environment:
        container["Environment"] = dict(environment)
    definition: dict[str, Any] = {"PrimaryContainer": container, "ExecutionRoleArn": role_arn,
                                  "EnableNetworkIsolation": network_isolation}
    if vpc:
        definition["VpcConfig"] = vpc.request()
    sagemaker = resolve(clients).sagemaker
    return _ensure_immutable("model", base_name, definition, "ModelName", "ModelArn", sagemaker.describe_model,
                             sagemaker.create_model, tags)


def ensure_endpoint_config(base_name: str, model_name: str, *, instance_type: str = "ml.m5.large",
                           instance_count: int = 1, variant: str = DEFAULT_VARIANT,
                           data_capture: DataCapture | None = None, kms_key_id: str | None = None,
                           tags: Mapping[str, str] | None = None, clients: Clients | None = None) -> Ensured:
    """An endpoint config ``{base_name}-{hash}``: one production variant, optional data capture."""
    definition: dict[str, Any] = {"ProductionVariants": [{
        "VariantName": variant, "ModelName": model_name, "InstanceType": instance_type,
        "InitialInstanceCount": instance_count, "InitialVariantWeight": 1.0}]}
    if data_capture:
        definition["DataCaptureConfig"] = data_capture.request()
    if kms_key_id:
        definition["KmsKeyId"] = kms_key_id
    sagemaker = resolve(clients).sagemaker
    return _ensure_immutable("endpoint config", base_name, definition, "EndpointConfigName", "EndpointConfigArn",
                             sagemaker.describe_endpoint_config, sagemaker.create_endpoint_config, tags)


def blue_green(*, canary_percent: int | None = None, wait_s: int = 600, termination_wait_s: int = 120,
               alarms: Iterable[str] = ()) -> dict:
    """An UpdateEndpoint DeploymentConfig: blue/green, all at once or canary, rolled back on ``alarms``."""
    shifting: dict[str, Any] = {"Type": "ALL_AT_ONCE", "WaitIntervalInSeconds": wait_s}
    if canary_percent is not None:
        shifting = {"Type": "CANARY", "WaitIntervalInSeconds": wait_s,
                    "CanarySize": {"Type": "CAPACITY_PERCENT", "Value": canary_percent}}
    config: dict[str, Any] = {"BlueGreenUpdatePolicy": {
        "TrafficRoutingConfiguration": shifting, "TerminationWaitInSeconds": termination_wait_s}}
    if alarms:
        config["AutoRollbackConfiguration"] = {"Alarms": [{"AlarmName": a} for a in alarms]}
    return config


def wait_endpoint(endpoint_name: str, *, clients: Clients | None = None, policy: WaitPolicy = DEFAULT_POLICY,
                  clock: Clock | None = None) -> dict:
    """Wait until the endpoint is InService; ResourceFailed when it ends Failed/OutOfService."""
    sagemaker = resolve(clients).poller("sagemaker")
    return wait_for(lambda: sagemaker.describe_endpoint(EndpointName=endpoint_name), ENDPOINT, endpoint_name,
                    policy=policy, clock=clock)


def deploy(endpoint_name: str, config_name: str, *, deployment_config: dict | None = None,
           tags: Mapping[str, str] | None = None, clients: Clients | None = None,
           policy: WaitPolicy = DEFAULT_POLICY, clock: Clock | None = None) -> Ensured:
    """Make ``endpoint_name`` run ``config_name``: create or update it, wait for InService, verify.

    UNCHANGED (no mutating call) when it already runs that config. Raises ResourceFailed when the
    endpoint fails, DeploymentRolledBack when SageMaker rolled the update back to the old config.
    """
    clients = resolve(clients)
    sagemaker = clients.sagemaker

    def settle() -> dict:
        return wait_endpoint(endpoint_name, clients=clients, policy=policy, clock=clock)

    current = describe_or_none(sagemaker.describe_endpoint, EndpointName=endpoint_name)
    if current is not None and current["EndpointStatus"] not in ENDPOINT.succeeded | ENDPOINT.failed:
        log.info("endpoint_busy", endpoint=endpoint_name, status=current["EndpointStatus"])
        current = settle()
    if current is not None and current["EndpointStatus"] in ENDPOINT.failed:
        raise ResourceFailed(endpoint_name, current["EndpointStatus"],
                             f"{current.get('FailureReason') or 'no failure reason was reported'}. "
                             "A failed endpoint cannot be updated: delete it (delete_endpoint) and deploy again",
                             ENDPOINT.logs(endpoint_name, current), current)
    previous = current["EndpointConfigName"] if current else None
    if previous == config_name:
        return Ensured(Action.UNCHANGED, "endpoint", endpoint_name, current["EndpointArn"], {"config": config_name})
    if current is None:
        sagemaker.create_endpoint(EndpointName=endpoint_name, EndpointConfigName=config_name, Tags=tag_list(tags))
        action = Action.CREATED
    else:
        extra = {"DeploymentConfig": deployment_config} if deployment_config else {}
        sagemaker.update_endpoint(EndpointName=endpoint_name, EndpointConfigName=config_name, **extra)
        action = Action.UPDATED
    log.info("endpoint_deploying", endpoint=endpoint_name, config=config_name, previous_config=previous)
    final = settle()
    if final["EndpointConfigName"] != config_name:
        raise DeploymentRolledBack(endpoint_name, config_name, final["EndpointConfigName"], final.get("FailureReason"))
    log.info("endpoint_deployed", endpoint=endpoint_name, config=config_name)
    return Ensured(action, "endpoint", endpoint_name, final["EndpointArn"],
                   {"config": config_name, "previous_config": previous})


def _delete(kind: str, name: str, operation: str, name_key: str, clients: Clients | None) -> Ensured:
    sagemaker = resolve(clients).sagemaker
    return delete_tolerant(
        kind, name, getattr(sagemaker, f"delete_{operation}"), **{name_key: name},
        exists=lambda: describe_or_none(getattr(sagemaker, f"describe_{operation}"), **{name_key: name}) is not None)


def delete_endpoint(name: str, *, clients: Clients | None = None) -> Ensured:
    return _delete("endpoint", name, "endpoint", "EndpointName", clients)


def delete_endpoint_config(name: str, *, clients: Clients | None = None) -> Ensured:
    return _delete("endpoint config", name, "endpoint_config", "EndpointConfigName", clients)


def delete_model(name: str, *, clients: Clients | None = None) -> Ensured:
    return _delete("model", name, "model", "ModelName", clients)


def _names(sagemaker: Any, operation: str, key: str, name_key: str, prefix: str) -> list[str]:
    pages = sagemaker.get_paginator(operation).paginate(NameContains=prefix)
    return [item[name_key] for page in pages for item in page[key] if item[name_key].startswith(prefix)]


def cleanup_superseded(endpoint_name: str, *, config_prefix: str, model_prefix: str,
                       clients: Clients | None = None) -> list[Ensured]:
    """Delete endpoint configs named ``config_prefix*`` and models named ``model_prefix*`` no endpoint uses.

    Call it only after ``deploy`` verified ``endpoint_name``: what ``endpoint_name`` and any endpoint named
    ``{endpoint_name}-*`` run is kept. Only those endpoints are described, so a role scoped to the project's
    delimited names suffices.
    """
    clients = resolve(clients)
    sagemaker = clients.sagemaker
    endpoints = _names(sagemaker, "list_endpoints", "Endpoints", "EndpointName", f"{endpoint_name}-")
    described = (describe_or_none(sagemaker.describe_endpoint, EndpointName=e) for e in {endpoint_name, *endpoints})
    in_use = {d["EndpointConfigName"] for d in described if d}
    kept_models = {v["ModelName"] for c in in_use
                   for v in sagemaker.describe_endpoint_config(EndpointConfigName=c)["ProductionVariants"]}
    configs = _names(sagemaker, "list_endpoint_configs", "EndpointConfigs", "EndpointConfigName", config_prefix)
    models = _names(sagemaker, "list_models", "Models", "ModelName", model_prefix)
    return ([delete_endpoint_config(c, clients=clients) for c in configs if c not in in_use]
            + [delete_model(m, clients=clients) for m in models if m not in kept_models])


@dataclass(frozen=True)
class Deployed:
    """What ``deploy_model`` did to the model, the endpoint config, the endpoint and old resources."""

    model: Ensured
    config: Ensured
    endpoint: Ensured
    cleaned: tuple[Ensured, ...] = ()


def deploy_model(endpoint_name: str, image_uri: str, model_data_url: str, role_arn: str, *,
                 instance_type: str = "ml.m5.large", instance_count: int = 1,
                 data_capture: DataCapture | None = None, deployment_config: dict | None = None,
                 cleanup: bool = True, tags: Mapping[str, str] | None = None, clients: Clients | None = None,
                 policy: WaitPolicy = DEFAULT_POLICY, clock: Clock | None = None) -> Deployed:
    """Model -> endpoint config -> endpoint, verified; then (``cleanup``) delete superseded configs and models."""
    clients = resolve(clients)
    model_base, config_base = f"{endpoint_name}-model", f"{endpoint_name}-config"
    model = ensure_model(model_base, image_uri, model_data_url, role_arn, tags=tags, clients=clients)
    config = ensure_endpoint_config(config_base, model.name, instance_type=instance_type,
                                    instance_count=instance_count, data_capture=data_capture, tags=tags,
                                    clients=clients)
    endpoint = deploy(endpoint_name, config.name, deployment_config=deployment_config, tags=tags,
                      clients=clients, policy=policy, clock=clock)
    cleaned = (cleanup_superseded(endpoint_name, config_prefix=f"{config_base}-", model_prefix=f"{model_base}-",
                                  clients=clients) if cleanup else [])
    return Deployed(model, config, endpoint, tuple(cleaned))
