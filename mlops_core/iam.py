"""IAM: service roles with a trust policy and inline policies, ensured from plain ``RoleSpec``s.

``statement`` and ``policy_document`` build policy documents; ``WILDCARD_ONLY`` lists the few actions AWS
only grants on ``"Resource": "*"`` (and why), so a policy generator can keep every other action scoped.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass

from botocore.exceptions import ClientError

from mlops_core.aws import Clients, is_not_found, resolve
from mlops_core.ensure import Action, Ensured, describe_or_none, normalize_document, result

KIND = "iam role"
DEFAULT_POLICY_NAME = "least-privilege"
SERVICES = {"codepipeline": "codepipeline.amazonaws.com", "codebuild": "codebuild.amazonaws.com",
            "sagemaker": "sagemaker.amazonaws.com", "stepfunctions": "states.amazonaws.com",
            "events": "events.amazonaws.com"}

# Actions that have no resource-level permissions: AWS only grants them on "*".
WILDCARD_ONLY = {
    "ecr:GetAuthorizationToken": "the registry login token is account-wide; ECR has no resource for it",
    "sagemaker:ListModelPackages": "List* calls of SageMaker have no resource type",
    "sagemaker:ListEndpoints": "List* calls of SageMaker have no resource type",
    "sagemaker:ListEndpointConfigs": "List* calls of SageMaker have no resource type",
    "sagemaker:ListModels": "List* calls of SageMaker have no resource type",
    "cloudwatch:PutMetricData": "CloudWatch metrics have no ARN (restricted by the cloudwatch:namespace "
                                "condition instead)",
    "application-autoscaling:DescribeScalableTargets": "Describe* calls of Application Auto Scaling have "
                                                       "no resource type",
    "application-autoscaling:DescribeScalingPolicies": "Describe* calls of Application Auto Scaling have "
                                                       "no resource type",
}


@dataclass(frozen=True)
class RoleSpec:
    """A role to ensure: name, the service principal that assumes it, its inline policy and that policy's
    name, and who may make the service assume it (``source_account``, ``source_arns``: see trust_policy)."""

    name: str
    service: str
    policy: dict
    description: str = ""
    policy_name: str = DEFAULT_POLICY_NAME
    source_account: str | None = None
    source_arns: tuple[str, ...] = ()


def trust_policy(service: str, source_account: str | None = None, source_arns: tuple[str, ...] = ()) -> dict:
    """The trust policy letting ``service`` (e.g. ``sagemaker.amazonaws.com``) assume a role; with
    ``source_account`` / ``source_arns`` only on behalf of that account / those resources (the confused
    deputy conditions ``aws:SourceAccount`` and ``aws:SourceArn``)."""
    trust: dict = {"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}
    conditions: dict = {}
    if source_account:
        conditions["StringEquals"] = {"aws:SourceAccount": source_account}
    if source_arns:
        conditions["ArnLike"] = {"aws:SourceArn": list(source_arns)}
    if conditions:
        trust["Condition"] = conditions
    return {"Version": "2012-10-17", "Statement": [trust]}


def statement(sid: str, actions: list[str], resources: list[str] | str, condition: dict | None = None) -> dict:
    """An Allow statement (actions sorted, so documents compare stably)."""
    allowed = {"Sid": sid, "Effect": "Allow", "Action": sorted(actions),
               "Resource": resources if isinstance(resources, str) else list(resources)}
    if condition:
        allowed["Condition"] = condition
    return allowed


def policy_document(*statements: dict) -> dict:
    """A policy document of ``statements``."""
    return {"Version": "2012-10-17", "Statement": list(statements)}


def _role(iam, name: str) -> dict | None:
    found = describe_or_none(iam.get_role, RoleName=name)
    return found["Role"] if found else None


def ensure_role(name: str, *, service: str, policies: Mapping[str, dict], description: str = "",
                source_account: str | None = None, source_arns: tuple[str, ...] = (),
                tags: Mapping[str, str] | None = None, dry_run: bool = False,
                clients: Clients | None = None) -> Ensured:
    """Create the role or bring its trust policy, inline ``policies`` (name -> document) and tags in line.

    Inline policies not in ``policies`` are deleted: the role belongs to the caller.
    """
    iam = resolve(clients).iam
    trust = trust_policy(service, source_account, source_arns)
    tag_list = [{"Key": k, "Value": v} for k, v in (tags or {}).items()]
    current = _role(iam, name)
    changes: list[str] = []
    if current is None:
        if not dry_run:
            current = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust),
                                      Description=description, Tags=tag_list)["Role"]
            for policy_name, document in policies.items():
                iam.put_role_policy(RoleName=name, PolicyName=policy_name, PolicyDocument=json.dumps(document))
        return result(KIND, name, created=True, arn=(current or {}).get("Arn"), dry_run=dry_run)
    if normalize_document(current["AssumeRolePolicyDocument"]) != normalize_document(trust):
        changes.append("trust policy")
        if not dry_run:
            iam.update_assume_role_policy(RoleName=name, PolicyDocument=json.dumps(trust))
    existing = set(iam.list_role_policies(RoleName=name)["PolicyNames"])
    for policy_name, document in policies.items():
        if policy_name not in existing or normalize_document(iam.get_role_policy(
                RoleName=name, PolicyName=policy_name)["PolicyDocument"]) != normalize_document(document):
            changes.append(f"policy {policy_name}")
            if not dry_run:
                iam.put_role_policy(RoleName=name, PolicyName=policy_name, PolicyDocument=json.dumps(document))
    for policy_name in sorted(existing - set(policies)):
        changes.append(f"remove policy {policy_name}")
        if not dry_run:
            iam.delete_role_policy(RoleName=name, PolicyName=policy_name)
    current_tags = {t["Key"]: t["Value"] for t in current.get("Tags", [])}
    if any(current_tags.get(k) != v for k, v in (tags or {}).items()):
        changes.append("tags")
        if not dry_run:
            iam.tag_role(RoleName=name, Tags=tag_list)
    return result(KIND, name, changes=changes, arn=current["Arn"], dry_run=dry_run)


def ensure_role_spec(spec: RoleSpec, *, tags: Mapping[str, str] | None = None, dry_run: bool = False,
                     clients: Clients | None = None) -> Ensured:
    """``ensure_role`` for a RoleSpec: its one inline policy, nothing else."""
    return ensure_role(spec.name, service=spec.service, policies={spec.policy_name: spec.policy},
                       description=spec.description, source_account=spec.source_account,
                       source_arns=spec.source_arns, tags=tags, dry_run=dry_run, clients=clients)


def delete_role(name: str, *, clients: Clients | None = None) -> Ensured:
    """Delete the role after its inline and attached policies; ABSENT when it is already gone."""
    iam = resolve(clients).iam
    try:
        for policy_name in iam.list_role_policies(RoleName=name)["PolicyNames"]:
            iam.delete_role_policy(RoleName=name, PolicyName=policy_name)
        for attached in iam.list_attached_role_policies(RoleName=name)["AttachedPolicies"]:
            iam.detach_role_policy(RoleName=name, PolicyArn=attached["PolicyArn"])
        iam.delete_role(RoleName=name)
    except ClientError as exc:
        if is_not_found(exc):
            return Ensured(Action.ABSENT, KIND, name)
        raise
    return Ensured(Action.DELETED, KIND, name)
