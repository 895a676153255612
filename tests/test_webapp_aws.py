"""The Age Calculator's AWS resources on moto: bootstrap creates the API Gateway API (a direct SageMaker Runtime
integration passing the body through), the page's private bucket, CloudFront with origin access control and the
API's role; a re-run changes nothing; teardown removes them."""

from __future__ import annotations

import json

from mlops_core import apigateway, cloudfront
from mlops_core.ensure import Action
from mlops_core.project import Project, bootstrap, teardown
from mlops_core.project.webapp import WebappNames, webapp_steps
from tests.fakes import rerun_changes_nothing

ACCOUNT = "123456789012"
WEBAPP_KINDS = ["cloudfront origin access control", "cloudfront distribution", "s3 bucket", "iam role",
                "api gateway rest api", "api gateway usage plan", "age calculator page"]


def project(**settings) -> Project:
    # tls_only=False: moto ignores the conditions of a bucket policy, so the TLS-only deny would deny every request
    return Project(name="abalone", account_id=ACCOUNT, region="us-east-1", **{"webapp": True, "tls_only": False,
                                                                               **settings})


def webapp_results(results):
    names = WebappNames(project())
    ours = {names.api, names.bucket, names.origin_access_control, names.role, f"s3://{names.bucket}"}
    return [r for r in results if r.name in ours]


def method(aws, api_id: str, path: str, http_method: str) -> dict:
    resources = {r["path"]: r["id"] for r in aws.apigateway.get_resources(restApiId=api_id)["items"]}
    return aws.apigateway.get_method(restApiId=api_id, resourceId=resources[path], httpMethod=http_method)


def test_bootstrap_creates_the_api_the_site_and_the_role(aws):
    names = WebappNames(project())
    sent = []  # moto drops OriginAccessControlId from the origins it describes: read what was sent
    aws.cloudfront.meta.events.register("provide-client-params.cloudfront.CreateDistributionWithTags",
                                        lambda params, **_: sent.append(params))
    results = webapp_results(bootstrap(project(), clients=aws))
    assert [(r.kind, r.action) for r in results] == [(kind, Action.CREATED) for kind in WEBAPP_KINDS]

    api = apigateway.find_rest_api(names.api, clients=aws)
    predict = method(aws, api["id"], "/predict", "POST")
    integration = predict["methodIntegration"]
    assert integration["type"] == "AWS" and integration["httpMethod"] == "POST"
    assert integration["uri"] == "arn:aws:apigateway:us-east-1:runtime.sagemaker:path/endpoints/abalone/invocations"
    assert integration["credentials"] == f"arn:aws:iam::{ACCOUNT}:role/abalone-apigateway"
    # the body passes through unchanged; any other content type gets 415
    assert integration["requestTemplates"] == {"text/csv": "$input.body", "application/json": "$input.body"}
    assert integration["passthroughBehavior"] == "NEVER"
    responses = integration["integrationResponses"]
    assert (responses["400"]["selectionPattern"], responses["502"]["selectionPattern"]) == (r"4\d{2}", r"5\d{2}")
    assert "OriginalMessage" in responses["400"]["responseTemplates"]["application/json"]
    validator = aws.apigateway.get_request_validator(restApiId=api["id"], requestValidatorId=predict["requestValidatorId"])
    assert validator["validateRequestBody"] and validator["validateRequestParameters"]
    assert predict["requestParameters"] == {"method.request.header.Content-Type": True}
    assert predict["requestModels"] == {"application/json": "Rows"}
    rows = json.loads(aws.apigateway.get_model(restApiId=api["id"], modelName="Rows")["schema"])
    assert rows["maxItems"] == 500

    distribution = cloudfront.find_distribution(names.distribution, clients=aws)
    origin = f"'https://{distribution['DomainName']}'"
    preflight = method(aws, api["id"], "/predict", "OPTIONS")["methodIntegration"]["integrationResponses"]["200"]
    assert preflight["responseParameters"]["method.response.header.Access-Control-Allow-Origin"] == origin
    assert responses["200"]["responseParameters"] == {"method.response.header.Access-Control-Allow-Origin": origin}
    denied = aws.apigateway.get_gateway_response(restApiId=api["id"], responseType="DEFAULT_4XX")
    assert denied["responseParameters"] == {"gatewayresponse.header.Access-Control-Allow-Origin": origin}

    stage = aws.apigateway.get_stage(restApiId=api["id"], stageName="prod")
    assert (stage["methodSettings"]["*/*"]["throttlingRateLimit"], stage["methodSettings"]["*/*"]["throttlingBurstLimit"]) == (10.0, 20)
    [plan] = aws.apigateway.get_usage_plans()["items"]
    assert plan["apiStages"] == [{"apiId": api["id"], "stage": "prod"}]
    assert plan["throttle"] == {"rateLimit": 10.0, "burstLimit": 20} and plan["quota"]["limit"] == 10000

    config = aws.cloudfront.get_distribution_config(Id=distribution["Id"])["DistributionConfig"]
    assert config["DefaultRootObject"] == "index.html"
    assert config["DefaultCacheBehavior"]["ViewerProtocolPolicy"] == "redirect-to-https"
    [s3_origin] = config["Origins"]["Items"]
    assert s3_origin["DomainName"] == f"{names.bucket}.s3.us-east-1.amazonaws.com"
    oac = cloudfront.find_origin_access_control(names.origin_access_control, clients=aws)
    assert (oac["SigningProtocol"], oac["SigningBehavior"], oac["OriginAccessControlOriginType"]) == ("sigv4", "always", "s3")
    [created] = sent
    [sent_origin] = created["DistributionConfigWithTags"]["DistributionConfig"]["Origins"]["Items"]
    assert sent_origin["OriginAccessControlId"] == oac["Id"]
    assert sent_origin["S3OriginConfig"] == {"OriginAccessIdentity": ""}  # no legacy origin access identity

    policy = json.loads(aws.s3.get_bucket_policy(Bucket=names.bucket)["Policy"])
    reader = next(s for s in policy["Statement"] if s["Sid"] == "CloudFrontReadsThePage")
    assert reader["Principal"] == {"Service": "cloudfront.amazonaws.com"} and reader["Action"] == "s3:GetObject"
    assert reader["Condition"] == {"StringEquals": {"AWS:SourceArn": distribution["ARN"]}}
    blocked = aws.s3.get_public_access_block(Bucket=names.bucket)["PublicAccessBlockConfiguration"]
    assert all(blocked.values())
    assert aws.s3.get_bucket_encryption(Bucket=names.bucket)["ServerSideEncryptionConfiguration"]["Rules"]
    keys = {o["Key"] for o in aws.s3.list_objects_v2(Bucket=names.bucket)["Contents"]}
    assert keys == {"index.html", "app.js", "style.css", "config.js"}
    config_js = aws.s3.get_object(Bucket=names.bucket, Key="config.js")["Body"].read().decode()
    assert f'"apiUrl": "https://{api["id"]}.execute-api.us-east-1.amazonaws.com/prod"' in config_js

    role_policy = aws.iam.get_role_policy(RoleName=names.role, PolicyName="least-privilege")["PolicyDocument"]
    assert [s["Action"] for s in role_policy["Statement"]] == [["sagemaker:InvokeEndpoint"]]


def test_a_second_bootstrap_makes_zero_mutating_calls(aws, recorder):
    rerun_changes_nothing(lambda: bootstrap(project(), clients=aws), recorder)


def test_dry_run_plans_the_webapp_and_changes_nothing(aws, recorder):
    results = webapp_results(bootstrap(project(), dry_run=True, clients=aws))
    assert recorder.mutating == []
    assert [(r.kind, r.action) for r in results] == [(kind, Action.CREATED) for kind in WEBAPP_KINDS]


def test_another_endpoint_updates_the_method_and_redeploys_only(aws, recorder):
    bootstrap(project(), clients=aws)
    recorder.clear()
    changed = [r for r in (step() for step in webapp_steps(project(model_name="abalone-v2"), clients=aws)) if r.changed]
    assert [(r.kind, r.details.get("changes")) for r in changed] == [
        ("iam role", ["policy least-privilege"]),
        ("api gateway rest api", ["description", "method POST /predict", "deployment"])]
    assert ("apigateway", "CreateDeployment") in recorder.mutating
    recorder.clear()
    assert not [r for r in (step() for step in webapp_steps(project(model_name="abalone-v2"), clients=aws)) if r.changed]
    assert recorder.mutating == []


def test_a_method_the_spec_does_not_name_is_removed(aws):
    bootstrap(project(), clients=aws)
    api_id = apigateway.find_rest_api(WebappNames(project()).api, clients=aws)["id"]
    resources = {r["path"]: r["id"] for r in aws.apigateway.get_resources(restApiId=api_id)["items"]}
    aws.apigateway.put_method(restApiId=api_id, resourceId=resources["/predict"], httpMethod="GET",
                              authorizationType="NONE")
    [api] = [r for r in bootstrap(project(), clients=aws) if r.kind == "api gateway rest api"]
    assert api.details["changes"] == ["remove method GET /predict", "deployment"]
    assert set(aws.apigateway.get_resource(restApiId=api_id, resourceId=resources["/predict"])["resourceMethods"]) == {
        "POST", "OPTIONS"}


def test_teardown_removes_every_webapp_resource_and_can_run_twice(aws):
    names = WebappNames(project())
    bootstrap(project(), clients=aws)
    results = webapp_results(teardown(project(), clients=aws))
    assert {r.action for r in results} == {Action.DELETED}
    assert len(results) == 6  # usage plan, API, distribution, origin access control, role, page bucket
    assert aws.apigateway.get_rest_apis()["items"] == [] and aws.apigateway.get_usage_plans()["items"] == []
    assert aws.cloudfront.list_distributions()["DistributionList"].get("Items", []) == []
    assert aws.cloudfront.list_origin_access_controls()["OriginAccessControlList"].get("Items", []) == []
    assert names.bucket not in [b["Name"] for b in aws.s3.list_buckets()["Buckets"]]
    again = webapp_results(teardown(project(), clients=aws))
    assert {r.action for r in again} == {Action.ABSENT}


def test_without_the_webapp_setting_nothing_of_it_is_created_or_reported(aws):
    assert not webapp_results(bootstrap(project(webapp=False), clients=aws))
    assert not webapp_results(teardown(project(webapp=False), clients=aws))


def test_the_bootstrap_script_prints_the_page_and_the_api(aws, capsys):
    from tests.test_cicd_bootstrap import _script

    assert _script("bootstrap").main(["--project", "abalone", "--webapp", "--no-tls-policy"], clients=aws) == 0
    out = capsys.readouterr().out
    domain = cloudfront.find_distribution(WebappNames(project()).distribution, clients=aws)["DomainName"]
    api_id = apigateway.find_rest_api(WebappNames(project()).api, clients=aws)["id"]
    assert f"page:      https://{domain}/ (the Age Calculator)" in out
    assert f"API:       POST https://{api_id}.execute-api.us-east-1.amazonaws.com/prod/predict" in out
