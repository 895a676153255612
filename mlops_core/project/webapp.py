"""The Age Calculator on AWS: the page in a private S3 bucket behind CloudFront (origin access control), and an
API Gateway REST API whose ``POST /predict`` integrates directly with SageMaker Runtime's InvokeEndpoint (no
Lambda), as a role allowed only ``sagemaker:InvokeEndpoint`` on the project's endpoint.

The integration passes the body through unchanged (``$input.body`` for ``text/csv`` and ``application/json``; any
other content type gets 415): the container takes raw rows, so nothing re-normalises them on the way. The
endpoint's refusal of a bad row (SageMaker's ModelError, 424) becomes a 400 carrying the container's message,
an endpoint failure a 502. ``webapp_steps`` are bootstrap's steps, in dependency order: the distribution's
domain is the API's CORS origin, its ARN the bucket policy's condition, the API's URL the page's ``config.js``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from mlops_core import apigateway, cloudfront, iam, s3
from mlops_core.apigateway import Method, RestApiSpec
from mlops_core.aws import Clients, resolve
from mlops_core.cloudfront import DistributionSpec
from mlops_core.ensure import Action, Ensured, result
from mlops_core.iam import RoleSpec, policy_document, statement
from mlops_core.project.names import Project
from mlops_core.webapp import ACCEPTED_TYPES, site_files

PASSTHROUGH = "$input.body"  # the request body, unchanged
APIGATEWAY_SERVICE = "apigateway.amazonaws.com"
CACHING_OPTIMIZED = "658327ea-f89d-4fab-a63d-7e88639e58f6"  # CloudFront's managed cache policy
THROTTLE = {"rateLimit": 10.0, "burstLimit": 20}  # requests per second for the whole stage, and the burst
QUOTA = {"limit": 10000, "period": "DAY"}
MAX_ROWS = 500  # rows one JSON request may hold (the model's request validator)
CORS_HEADERS = "Content-Type,Accept"
# the container's message of a refused row (ModelError's OriginalMessage), else SageMaker's own (message or Message)
REFUSAL = ("#set($original = $input.path('$.OriginalMessage'))#if(\"$!original\" != \"\")$original#{else}"
           "#set($message = $input.path('$.message'))#if(\"$!message\" == \"\")#set($message = $input.path('$.Message'))"
           "#end{\"error\": \"$util.escapeJavaScript($message)\"}#end")


class WebappNames:
    """The names of a project's Age Calculator resources."""

    def __init__(self, project: Project):
        p = project
        self.api = self.usage_plan = self.distribution = f"{p.name}-age-calculator"
        self.stage = "prod"
        self.bucket = f"{p.name}-site-{p.account_id}-{p.region}"
        self.origin_access_control = f"{p.name}-site"
        self.role = f"{p.name}-apigateway"
        self.role_arn = p.arn("iam", f"role/{self.role}", region=False)
        self.endpoint = p.model  # bin/deploy.py's default endpoint
        self.endpoint_arn = p.arn("sagemaker", f"endpoint/{p.model.lower()}")  # SageMaker ARNs are lower case


def webapp_role(project: Project) -> RoleSpec:
    """The API's execution role: InvokeEndpoint on the project's endpoint, nothing else; assumable by API Gateway
    only for this account's APIs in the project's region."""
    names = WebappNames(project)
    return RoleSpec(names.role, APIGATEWAY_SERVICE, policy_document(
        statement("InvokeEndpoint", ["sagemaker:InvokeEndpoint"], [names.endpoint_arn])),
        f"API Gateway's Age Calculator API of project {project.name}", source_account=project.account_id,
        source_arns=(project.arn("execute-api", "*"),))


def site_bucket_statement(project: Project, bucket: str, distribution_arn: str) -> dict:
    """The site bucket's policy statement: only the distribution (through its origin access control) reads."""
    return {"Sid": "CloudFrontReadsThePage", "Effect": "Allow", "Principal": {"Service": "cloudfront.amazonaws.com"},
            "Action": "s3:GetObject", "Resource": f"arn:{project.partition}:s3:::{bucket}/*",
            "Condition": {"StringEquals": {"AWS:SourceArn": distribution_arn}}}


def distribution_spec(project: Project, origin_access_control_id: str) -> DistributionSpec:
    """HTTPS only, the page's bucket as the one origin (signed by the origin access control), index.html at /."""
    names = WebappNames(project)
    origin = {"Id": "page", "DomainName": f"{names.bucket}.s3.{project.region}.amazonaws.com",
              "OriginAccessControlId": origin_access_control_id,
              "S3OriginConfig": {"OriginAccessIdentity": ""}}
    return DistributionSpec(names.distribution, {
        "Enabled": True, "DefaultRootObject": "index.html", "PriceClass": "PriceClass_100", "HttpVersion": "http2",
        "Origins": {"Quantity": 1, "Items": [origin]},
        "DefaultCacheBehavior": {"TargetOriginId": "page", "ViewerProtocolPolicy": "redirect-to-https",
                                 "CachePolicyId": CACHING_OPTIMIZED, "Compress": True,
                                 "AllowedMethods": {"Quantity": 2, "Items": ["GET", "HEAD"],
                                                    "CachedMethods": {"Quantity": 2, "Items": ["GET", "HEAD"]}}}})


def _cors(origin: str) -> dict[str, str]:
    return {"method.response.header.Access-Control-Allow-Origin": f"'{origin}'"}


def api_spec(project: Project, origin: str) -> RestApiSpec:
    """The REST API: ``POST /predict`` on the endpoint (body passed through), ``OPTIONS /predict`` for the page's
    ``origin``, a request validator (the Content-Type header, JSON bodies against the Rows model), CORS headers on
    API Gateway's own 4xx/5xx answers too, the stage's throttle."""
    names = WebappNames(project)
    header = "method.response.header.Access-Control-Allow-Origin"
    predict = Method(
        "/predict", "POST",
        integration={"type": "AWS", "integrationHttpMethod": "POST", "credentials": names.role_arn,
                     "uri": f"arn:{project.partition}:apigateway:{project.region}:runtime.sagemaker:path/endpoints/"
                            f"{names.endpoint}/invocations",
                     "passthroughBehavior": "NEVER", "timeoutInMillis": 29000,
                     "requestParameters": {"integration.request.header.Content-Type": "method.request.header.Content-Type",
                                           "integration.request.header.Accept": "'application/json'"},
                     "requestTemplates": {content_type: PASSTHROUGH for content_type in ACCEPTED_TYPES}},
        responses={status: {"responseParameters": {header: False}, "responseModels": {"application/json": "Empty"}}
                   for status in ("200", "400", "502")},
        integration_responses={
            "200": {"responseParameters": _cors(origin), "responseTemplates": {"application/json": PASSTHROUGH}},
            "400": {"selectionPattern": r"4\d{2}", "responseParameters": _cors(origin),
                    "responseTemplates": {"application/json": REFUSAL}},
            "502": {"selectionPattern": r"5\d{2}", "responseParameters": _cors(origin),
                    "responseTemplates": {"application/json": '{"error": "the model endpoint did not answer"}'}}},
        request_parameters={"method.request.header.Content-Type": True},
        request_models={"application/json": "Rows"}, request_validator="headers-and-body")
    preflight = Method(
        "/predict", "OPTIONS",
        integration={"type": "MOCK", "passthroughBehavior": "WHEN_NO_MATCH",
                     "requestTemplates": {"application/json": '{"statusCode": 200}'}},
        responses={"200": {"responseParameters": {f"method.response.header.Access-Control-Allow-{name}": False
                                                  for name in ("Origin", "Methods", "Headers")},
                           "responseModels": {"application/json": "Empty"}}},
        integration_responses={"200": {"responseParameters": {
            **_cors(origin), "method.response.header.Access-Control-Allow-Methods": "'OPTIONS,POST'",
            "method.response.header.Access-Control-Allow-Headers": f"'{CORS_HEADERS}'"}}})
    gateway_headers = {"gatewayresponse.header.Access-Control-Allow-Origin": f"'{origin}'"}
    errors = {"application/json": '{"error": $context.error.messageString}'}
    rows = {"type": "array", "minItems": 1, "maxItems": MAX_ROWS}
    return RestApiSpec(
        names.api, (predict, preflight), description=f"Age Calculator of project {project.name}: the page's API "
        f"in front of SageMaker endpoint {names.endpoint}", stage=names.stage,
        validators={"headers-and-body": {"validateRequestBody": True, "validateRequestParameters": True}},
        models={"Rows": {"contentType": "application/json", "schema": {
            "$schema": "http://json-schema.org/draft-04/schema#", "title": "Rows",
            "type": ["object", "array"], "minItems": 1, "maxItems": MAX_ROWS,
            "properties": {"instances": rows}}}},
        gateway_responses={kind: {"responseParameters": gateway_headers, "responseTemplates": errors}
                           for kind in ("DEFAULT_4XX", "DEFAULT_5XX")},
        throttle=THROTTLE)


def _upload_page(project: Project, api_url: str, distribution_id: str | None, dry_run: bool,
                 clients: Clients) -> Ensured:
    """The page's files in the site bucket (``config.js`` naming the API); CloudFront's copies of changed files
    invalidated."""
    names = WebappNames(project)
    files = {key: s3.ensure_object(names.bucket, key, body, content_type=content_type, dry_run=dry_run,
                                   clients=clients) for key, (body, content_type) in site_files(api_url).items()}
    changed = [key for key, ensured in files.items() if ensured.changed]
    if changed and distribution_id and not dry_run:
        clients.cloudfront.create_invalidation(DistributionId=distribution_id, InvalidationBatch={
            "Paths": {"Quantity": len(changed), "Items": [f"/{key}" for key in changed]},
            "CallerReference": f"{names.distribution}-{'-'.join(sorted(changed))}-{api_url}"[:128]})
    created = all(ensured.action is Action.CREATED for ensured in files.values())
    return result("age calculator page", s3.s3_uri(names.bucket), created=created,
                  changes=None if created else changed, dry_run=dry_run)


def webapp_steps(project: Project, *, dry_run: bool = False, clients: Clients | None = None
                 ) -> list[Callable[[], Ensured]]:
    """Bootstrap's steps for the Age Calculator, in dependency order; each returns its Ensured."""
    clients = resolve(clients)
    p, names, tags, common = project, WebappNames(project), project.tags, {"dry_run": dry_run, "clients": clients}
    found: dict[str, Any] = {}

    def remember(key: str, ensured: Ensured) -> Ensured:
        found[key] = ensured
        return ensured

    def domain() -> str:
        return found["distribution"].details.get("domain") or "<the distribution's domain>"

    def distribution_arn() -> str:
        return found["distribution"].arn or p.arn("cloudfront", "distribution/<new>", region=False)

    return [
        lambda: remember("oac", cloudfront.ensure_origin_access_control(
            names.origin_access_control, description=f"the Age Calculator page of project {p.name}", **common)),
        lambda: remember("distribution", cloudfront.ensure_distribution(
            distribution_spec(p, found["oac"].details.get("id") or "<new>"), tags=tags, **common)),
        lambda: s3.ensure_bucket(names.bucket, tags=tags, tls_only=p.tls_only, policy_statements=[
            site_bucket_statement(p, names.bucket, distribution_arn())], **common),
        lambda: iam.ensure_role_spec(webapp_role(p), tags=tags, **common),
        lambda: remember("api", apigateway.ensure_rest_api(api_spec(p, f"https://{domain()}"), tags=tags, **common)),
        lambda: apigateway.ensure_usage_plan(
            names.usage_plan, [(found["api"].details["id"], names.stage)] if found["api"].details.get("id") else [],
            throttle=THROTTLE, quota=QUOTA, description=f"Age Calculator of project {p.name}", tags=tags, **common),
        lambda: _upload_page(p, found["api"].details.get("url") or "", found["distribution"].details.get("id"),
                             dry_run, clients),
    ]


def delete_webapp(project: Project, *, clients: Clients | None = None) -> list[Ensured]:
    """Delete every Age Calculator resource (the page's bucket with its objects); safe to repeat."""
    clients = resolve(clients)
    names = WebappNames(project)
    return [apigateway.delete_usage_plan(names.usage_plan, clients=clients),
            apigateway.delete_rest_api(names.api, clients=clients),
            cloudfront.delete_distribution(names.distribution, clients=clients),
            cloudfront.delete_origin_access_control(names.origin_access_control, clients=clients),
            iam.delete_role(names.role, clients=clients),
            s3.delete_bucket(names.bucket, required_tags=project.tags, delete_objects=True, clients=clients)]
