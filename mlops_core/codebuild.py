"""CodeBuild: ensure build projects from plain CreateProject definitions, delete them and their logs."""

from __future__ import annotations

from botocore.exceptions import ClientError

from mlops_core.aws import Clients, is_not_found, resolve
from mlops_core.ensure import Action, Ensured, contains, result, retry_until_role_usable

KIND = "codebuild project"


def _comparable(definition: dict) -> dict:
    """``definition`` without the fields AWS ignores (and may not echo back)."""
    comparable = dict(definition)
    for key in ("source", "artifacts"):
        if comparable.get(key, {}).get("type") == "CODEPIPELINE":
            comparable[key] = {k: v for k, v in comparable[key].items() if k != "location"}
    return comparable


def describe_project(name: str, *, clients: Clients | None = None) -> dict | None:
    projects = resolve(clients).codebuild.batch_get_projects(names=[name])["projects"]
    return projects[0] if projects else None


def ensure_project(definition: dict, *, dry_run: bool = False, clients: Clients | None = None) -> Ensured:
    """Create the build project or update it when any field of ``definition`` differs."""
    codebuild = resolve(clients).codebuild
    name = definition["name"]
    current = describe_project(name, clients=clients)
    if current is None:
        if not dry_run:
            current = retry_until_role_usable(lambda: codebuild.create_project(**definition))["project"]
        return result(KIND, name, created=True, arn=(current or {}).get("arn"), dry_run=dry_run)
    changes = [key for key, value in _comparable(definition).items() if not contains(current.get(key), value)]
    if changes and not dry_run:
        retry_until_role_usable(lambda: codebuild.update_project(**definition))
    return result(KIND, name, changes=changes, arn=current.get("arn"), dry_run=dry_run)


def delete_project(name: str, *, clients: Clients | None = None) -> Ensured:
    if describe_project(name, clients=clients) is None:
        return Ensured(Action.ABSENT, KIND, name)
    resolve(clients).codebuild.delete_project(name=name)
    return Ensured(Action.DELETED, KIND, name)


def delete_build_logs(prefix: str, *, clients: Clients | None = None) -> list[Ensured]:
    """Delete the CloudWatch log groups CodeBuild created for projects named ``prefix``*."""
    logs = resolve(clients).logs
    deleted = []
    for page in logs.get_paginator("describe_log_groups").paginate(logGroupNamePrefix=f"/aws/codebuild/{prefix}"):
        for group in page["logGroups"]:
            try:
                logs.delete_log_group(logGroupName=group["logGroupName"])
                deleted.append(Ensured(Action.DELETED, "log group", group["logGroupName"]))
            except ClientError as exc:
                if not is_not_found(exc):
                    raise
    return deleted
