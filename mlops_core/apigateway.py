"""API Gateway REST APIs from plain specs: resources, methods with their integrations, request validators, models,
gateway responses, a deployed stage with throttling, and usage plans.

``ensure_rest_api`` finds the API by name and brings every part in line; a method that differs from its spec is
deleted and put again whole (AWS refuses a second PutMethod), and the stage moves to a new deployment only when the
definition changed: each deployment's description carries a hash of the definition it deploys, so a re-run with
the same spec makes no mutating call.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from mlops_core.aws import Clients, error_code, partition_of, resolve
from mlops_core.ensure import (
    Action,
    Ensured,
    contains,
    definition_hash,
    delete_tolerant,
    describe_or_none,
    result,
)
from mlops_core.errors import AwsResourceError
from mlops_core.logs import get_logger

KIND = "api gateway rest api"
USAGE_PLAN = "api gateway usage plan"
log = get_logger("apigateway")


@dataclass(frozen=True)
class Method:
    """One method of the resource at ``path``: the arguments of PutMethod (``request_*``, ``authorization_type``,
    ``request_validator`` by name), PutIntegration (``integration``), PutMethodResponse (``responses``: status ->
    arguments) and PutIntegrationResponse (``integration_responses``: status -> arguments), without the ids."""

    path: str
    http_method: str
    integration: dict
    responses: dict[str, dict] = field(default_factory=dict)
    integration_responses: dict[str, dict] = field(default_factory=dict)
    request_parameters: dict[str, bool] = field(default_factory=dict)
    request_models: dict[str, str] = field(default_factory=dict)
    request_validator: str | None = None
    authorization_type: str = "NONE"

    def described(self, validator_ids: Mapping[str, str]) -> dict:
        """The method as GetMethod describes it (what ``contains`` compares with)."""
        integration = {("httpMethod" if k == "integrationHttpMethod" else k): v for k, v in self.integration.items()}
        integration["integrationResponses"] = {s: {"statusCode": s, **args} for s, args in self.integration_responses.items()}
        described = {"httpMethod": self.http_method, "authorizationType": self.authorization_type,
                     "methodResponses": {s: {"statusCode": s, **args} for s, args in self.responses.items()},
                     "methodIntegration": integration}
        for key, value in (("requestParameters", self.request_parameters), ("requestModels", self.request_models)):
            if value:
                described[key] = value
        if self.request_validator:
            described["requestValidatorId"] = validator_ids[self.request_validator]
        return described


@dataclass(frozen=True)
class RestApiSpec:
    """A REST API and its ``stage``: ``validators`` (name -> validateRequestBody/validateRequestParameters),
    ``models`` (name -> contentType and a JSON schema), ``gateway_responses`` (type -> PutGatewayResponse
    arguments), the stage's default ``throttle`` (rateLimit, burstLimit) on every method."""

    name: str
    methods: tuple[Method, ...]
    description: str = ""
    stage: str = "prod"
    validators: dict[str, dict] = field(default_factory=dict)
    models: dict[str, dict] = field(default_factory=dict)
    gateway_responses: dict[str, dict] = field(default_factory=dict)
    throttle: dict = field(default_factory=lambda: {"rateLimit": 10.0, "burstLimit": 20})
    endpoint_type: str = "REGIONAL"

    @property
    def definition(self) -> str:
        """A hash of everything a deployment freezes (methods, validators, models, gateway responses)."""
        return definition_hash({"methods": [asdict(m) for m in self.methods], "validators": self.validators,
                                "models": self.models, "gateway_responses": self.gateway_responses}, length=12)


def _get(call: Any, **kwargs: Any) -> dict | None:
    """``call(**kwargs)``, or None when API Gateway answers NotFoundException."""
    try:
        return describe_or_none(call, **kwargs)
    except ClientError as exc:
        if error_code(exc) == "NotFoundException":
            return None
        raise


def stage_url(api_id: str, region: str, stage: str) -> str:
    """The invoke URL of a stage."""
    suffix = ".cn" if region.startswith("cn-") else ""
    return f"https://{api_id}.execute-api.{region}.amazonaws.com{suffix}/{stage}"


def find_rest_api(name: str, *, clients: Clients | None = None) -> dict | None:
    """The REST API called ``name``; AwsResourceError when several are."""
    found = [api for page in resolve(clients).apigateway.get_paginator("get_rest_apis").paginate()
             for api in page.get("items", []) if api["name"] == name]
    if len(found) > 1:
        raise AwsResourceError(f"rest api {name}", "find", f"{len(found)} REST APIs have this name "
                               f"({', '.join(api['id'] for api in found)})", "delete the extra ones")
    return found[0] if found else None


def _resources(apigateway: Any, api_id: str) -> dict[str, dict]:
    """path -> the resource with its methods embedded."""
    pages = apigateway.get_paginator("get_resources").paginate(restApiId=api_id, embed=["methods"])
    return {item["path"]: item for page in pages for item in page.get("items", [])}


def _ensure_resource(apigateway: Any, api_id: str, resources: dict[str, dict], path: str) -> str:
    """The id of the resource at ``path``, creating it and its missing ancestors."""
    if path not in resources:
        parent, _, part = path.rstrip("/").rpartition("/")
        parent_id = _ensure_resource(apigateway, api_id, resources, parent or "/")
        resources[path] = apigateway.create_resource(restApiId=api_id, parentId=parent_id, pathPart=part)
    return resources[path]["id"]


def _put_method(apigateway: Any, ids: dict, method: Method, validator_ids: Mapping[str, str], exists: bool) -> None:
    if exists:
        apigateway.delete_method(**ids)
    extra = {"requestValidatorId": validator_ids[method.request_validator]} if method.request_validator else {}
    apigateway.put_method(**ids, authorizationType=method.authorization_type,
                          requestParameters=method.request_parameters, requestModels=method.request_models, **extra)
    for status, args in method.responses.items():
        apigateway.put_method_response(**ids, statusCode=status, **args)
    apigateway.put_integration(**ids, **method.integration)
    for status, args in method.integration_responses.items():
        apigateway.put_integration_response(**ids, statusCode=status, **args)


UPDATE_NAMED = {  # kind -> how to patch one (models only take a new schema or description)
    "request_validator": lambda apigateway, api_id, item, operations: apigateway.update_request_validator(
        restApiId=api_id, requestValidatorId=item["id"], patchOperations=operations),
    "model": lambda apigateway, api_id, item, operations: apigateway.update_model(
        restApiId=api_id, modelName=item["name"], patchOperations=operations),
}


def _ensure_named(apigateway: Any, api_id: str, kind: str, wanted: Mapping[str, dict], dry_run: bool,
                  changes: list[str]) -> dict[str, str]:
    """Request validators (``kind`` "request_validator") or models (``kind`` "model") by name; name -> id."""
    listed = {item["name"]: item for item in getattr(apigateway, f"get_{kind}s")(restApiId=api_id, limit=500)
              .get("items", [])} if api_id else {}
    ids = {}
    for name, args in wanted.items():
        desired = {**args, "schema": json.dumps(args["schema"], sort_keys=True)} if "schema" in args else args
        current = listed.get(name)
        if current is None:
            changes.append(f"{kind.replace('_', ' ')} {name}")
            current = {"id": f"<{name}>"} if dry_run else getattr(apigateway, f"create_{kind}")(
                restApiId=api_id, name=name, **desired)
        elif not contains(current, desired):
            changes.append(f"{kind.replace('_', ' ')} {name}")
            if not dry_run:
                UPDATE_NAMED[kind](apigateway, api_id, current, [
                    {"op": "replace", "path": f"/{key}", "value": str(value).lower() if isinstance(value, bool)
                     else value} for key, value in desired.items() if current.get(key) != value])
        ids[name] = current["id"]
    return ids


def _ensure_stage(apigateway: Any, api_id: str, spec: RestApiSpec, tags: Mapping[str, str], dry_run: bool,
                  changes: list[str], redeploy: bool = False) -> None:
    """The stage on a deployment of this definition (a new one with ``redeploy``), the throttle on every method."""
    description = f"{spec.name} definition {spec.definition}"
    stage = _get(apigateway.get_stage, restApiId=api_id, stageName=spec.stage) if api_id else None
    deployed = stage and _get(apigateway.get_deployment, restApiId=api_id, deploymentId=stage["deploymentId"])
    if redeploy or not deployed or deployed.get("description") != description:
        changes.append("deployment")
        if not dry_run:
            deployment = apigateway.create_deployment(restApiId=api_id, description=description)["id"]
            if stage:
                apigateway.update_stage(restApiId=api_id, stageName=spec.stage, patchOperations=[
                    {"op": "replace", "path": "/deploymentId", "value": deployment}])
            else:
                stage = apigateway.create_stage(restApiId=api_id, stageName=spec.stage, deploymentId=deployment,
                                                tags=dict(tags))
    settings = ((stage or {}).get("methodSettings") or {}).get("*/*", {})
    wanted = {"throttlingRateLimit": float(spec.throttle["rateLimit"]),
              "throttlingBurstLimit": int(spec.throttle["burstLimit"])}
    if not contains(settings, wanted):
        changes.append("stage throttling")
        if not dry_run:
            apigateway.update_stage(restApiId=api_id, stageName=spec.stage, patchOperations=[
                {"op": "replace", "path": "/*/*/throttling/rateLimit", "value": str(wanted["throttlingRateLimit"])},
                {"op": "replace", "path": "/*/*/throttling/burstLimit", "value": str(wanted["throttlingBurstLimit"])}])


def ensure_rest_api(spec: RestApiSpec, *, tags: Mapping[str, str] | None = None, dry_run: bool = False,
                    clients: Clients | None = None) -> Ensured:
    """Create or bring in line the REST API, its parts and its stage; ``details["url"]`` is the stage's URL."""
    clients = resolve(clients)
    apigateway, tags = clients.apigateway, dict(tags or {})
    current = find_rest_api(spec.name, clients=clients)
    created = current is None
    if created and not dry_run:
        current = apigateway.create_rest_api(name=spec.name, description=spec.description, tags=tags,
                                             endpointConfiguration={"types": [spec.endpoint_type]})
    api_id = (current or {}).get("id", "")
    changes: list[str] = []
    if current and current.get("description", "") != spec.description and not created:
        changes.append("description")
        if not dry_run:
            apigateway.update_rest_api(restApiId=api_id, patchOperations=[
                {"op": "replace", "path": "/description", "value": spec.description}])
    validator_ids = _ensure_named(apigateway, api_id, "request_validator", spec.validators, dry_run, changes)
    _ensure_named(apigateway, api_id, "model", spec.models, dry_run, changes)
    resources = _resources(apigateway, api_id) if api_id else {}
    for method in spec.methods:
        existing = resources.get(method.path, {}).get("resourceMethods", {}).get(method.http_method)
        if existing and contains(existing, method.described(validator_ids)):
            continue
        changes.append(f"method {method.http_method} {method.path}")
        if not dry_run:
            resource_id = _ensure_resource(apigateway, api_id, resources, method.path)
            _put_method(apigateway, {"restApiId": api_id, "resourceId": resource_id, "httpMethod": method.http_method},
                        method, validator_ids, exists=bool(existing))
    wanted = {(method.path, method.http_method) for method in spec.methods}
    for path, resource in resources.items():  # the API belongs to the spec: methods it does not name go
        for http_method in sorted(set(resource.get("resourceMethods") or {}) - {m for p, m in wanted if p == path}):
            changes.append(f"remove method {http_method} {path}")
            if not dry_run:
                apigateway.delete_method(restApiId=api_id, resourceId=resource["id"], httpMethod=http_method)
    for response_type, args in spec.gateway_responses.items():
        found = _get(apigateway.get_gateway_response, restApiId=api_id,
                     responseType=response_type) if api_id else None
        if not found or not contains(found, args):
            changes.append(f"gateway response {response_type}")
            if not dry_run:
                apigateway.put_gateway_response(restApiId=api_id, responseType=response_type, **args)
    _ensure_stage(apigateway, api_id, spec, tags, dry_run, changes,
                  redeploy=any(change.startswith("remove method") for change in changes))
    if created:
        log.info("created", kind=KIND, name=spec.name, id=api_id)
    return result(KIND, spec.name, created=created, changes=None if created else changes, dry_run=dry_run,
                  arn=f"arn:{partition_of(clients.region)}:apigateway:{clients.region}::/restapis/{api_id}"
                  if api_id else None, id=api_id or None, url=stage_url(api_id, clients.region, spec.stage)
                  if api_id else None)


def delete_rest_api(name: str, *, clients: Clients | None = None) -> Ensured:
    """Delete the REST API called ``name`` with its stages and deployments; ABSENT when there is none."""
    clients = resolve(clients)
    found = find_rest_api(name, clients=clients)
    if found is None:
        return Ensured(Action.ABSENT, KIND, name)
    return delete_tolerant(KIND, name, clients.apigateway.delete_rest_api, restApiId=found["id"])


def _find_usage_plan(apigateway: Any, name: str) -> dict | None:
    return next((plan for page in apigateway.get_paginator("get_usage_plans").paginate()
                 for plan in page.get("items", []) if plan["name"] == name), None)


def ensure_usage_plan(name: str, api_stages: list[tuple[str, str]], *, throttle: Mapping[str, float],
                      quota: Mapping[str, Any] | None = None, description: str = "",
                      tags: Mapping[str, str] | None = None, dry_run: bool = False,
                      clients: Clients | None = None) -> Ensured:
    """A usage plan named ``name`` over ``api_stages`` ((api id, stage) pairs) with ``throttle`` (rateLimit,
    burstLimit) and ``quota`` (limit, period)."""
    apigateway = resolve(clients).apigateway
    current = _find_usage_plan(apigateway, name)
    stages = [{"apiId": api_id, "stage": stage} for api_id, stage in api_stages]
    wanted: dict[str, Any] = {"throttle": {"rateLimit": float(throttle["rateLimit"]),
                                           "burstLimit": int(throttle["burstLimit"])}}
    if quota:
        wanted["quota"] = dict(quota)
    if current is None:
        if not dry_run:
            current = apigateway.create_usage_plan(name=name, description=description, apiStages=stages,
                                                   tags=dict(tags or {}), **wanted)
        return result(USAGE_PLAN, name, created=True, dry_run=dry_run, id=(current or {}).get("id"))
    operations = [{"op": "add", "path": "/apiStages", "value": f"{s['apiId']}:{s['stage']}"}
                  for s in stages if s not in [{k: v for k, v in c.items() if k in ("apiId", "stage")}
                                               for c in current.get("apiStages", [])]]
    operations += [{"op": "replace", "path": f"/{group}/{key}", "value": str(value)}
                   for group, values in wanted.items() for key, value in values.items()
                   if current.get(group, {}).get(key) != value]
    if operations and not dry_run:
        apigateway.update_usage_plan(usagePlanId=current["id"], patchOperations=operations)
    return result(USAGE_PLAN, name, changes=sorted({op["path"].split("/")[1] for op in operations}),
                  dry_run=dry_run, id=current["id"])


def delete_usage_plan(name: str, *, clients: Clients | None = None) -> Ensured:
    """Detach the usage plan from its stages and delete it; ABSENT when there is none."""
    apigateway = resolve(clients).apigateway
    current = _find_usage_plan(apigateway, name)
    if current is None:
        return Ensured(Action.ABSENT, USAGE_PLAN, name)
    stages = [{"op": "remove", "path": "/apiStages", "value": f"{s['apiId']}:{s['stage']}"}
              for s in current.get("apiStages", [])]
    if stages:
        apigateway.update_usage_plan(usagePlanId=current["id"], patchOperations=stages)
    return delete_tolerant(USAGE_PLAN, name, apigateway.delete_usage_plan, usagePlanId=current["id"])
