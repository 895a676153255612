"""The SageMaker model registry: model package groups, versions, approval, latest approved version.

A version registered for release E carries ``[release E]`` in its description (and E in its metadata),
so registering the same release twice finds the first version instead of adding a second.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from botocore.exceptions import ClientError

from mlops_core.aws import Clients, resolve
from mlops_core.ensure import Action, Ensured, describe_or_none, is_already_exists, tag_list
from mlops_core.logs import get_logger

APPROVED, PENDING, REJECTED = "Approved", "PendingManualApproval", "Rejected"
CONTENT_TYPES = ("text/csv", "application/json")

log = get_logger("sagemaker")


def ensure_model_package_group(name: str, *, description: str = "", tags: Mapping[str, str] | None = None,
                               clients: Clients | None = None) -> Ensured:
    """Create the model package group ``name`` unless it exists."""
    sagemaker = resolve(clients).sagemaker
    found = describe_or_none(sagemaker.describe_model_package_group, ModelPackageGroupName=name)
    if found:
        return Ensured(Action.UNCHANGED, "model package group", name, found["ModelPackageGroupArn"])
    request: dict[str, Any] = {"ModelPackageGroupName": name, "ModelPackageGroupDescription": description}
    if tags:
        request["Tags"] = tag_list(tags)
    try:
        arn = sagemaker.create_model_package_group(**request)["ModelPackageGroupArn"]
    except ClientError as exc:
        if not is_already_exists(exc):
            raise
        return Ensured(Action.UNCHANGED, "model package group", name)
    log.info("created", kind="model package group", name=name)
    return Ensured(Action.CREATED, "model package group", name, arn)


def _versions(group: str, sagemaker: Any, **filters: Any) -> Iterator[dict]:
    """Every version summary of ``group`` (all pages), newest first as the service sorts them."""
    pages = sagemaker.get_paginator("list_model_packages").paginate(
        ModelPackageGroupName=group, SortBy="CreationTime", SortOrder="Descending", **filters)
    for page in pages:
        yield from page["ModelPackageSummaryList"]


def _release_marker(execution_id: str) -> str:
    return f"[release {execution_id}]"


def find_version(group: str, execution_id: str, *, clients: Clients | None = None) -> dict | None:
    """The summary of the version registered for release ``execution_id``, or None."""
    marker = _release_marker(execution_id)
    return next((v for v in _versions(group, resolve(clients).sagemaker)
                 if marker in v.get("ModelPackageDescription", "")), None)


def set_approval(arn: str, status: str, *, description: str | None = None,
                 clients: Clients | None = None) -> Ensured:
    """Set a version's approval status (Approved, Rejected, PendingManualApproval); UNCHANGED if it has it."""
    sagemaker = resolve(clients).sagemaker
    current = sagemaker.describe_model_package(ModelPackageName=arn)
    if current.get("ModelApprovalStatus") == status:
        return Ensured(Action.UNCHANGED, "model package", arn, arn, {"approval": status})
    request = {"ModelPackageArn": arn, "ModelApprovalStatus": status}
    if description:
        request["ApprovalDescription"] = description
    sagemaker.update_model_package(**request)
    log.info("approval_changed", model_package=arn, approval=status,
             previous=current.get("ModelApprovalStatus"))
    return Ensured(Action.UPDATED, "model package", arn, arn, {"approval": status})


def approve_version(arn: str, *, description: str | None = None, clients: Clients | None = None) -> Ensured:
    return set_approval(arn, APPROVED, description=description, clients=clients)


def reject_version(arn: str, *, description: str | None = None, clients: Clients | None = None) -> Ensured:
    return set_approval(arn, REJECTED, description=description, clients=clients)


def register_version(group: str, image_uri: str, model_data_url: str, *, execution_id: str,
                     evaluation_uri: str | None = None, approval: str = PENDING, description: str = "",
                     instance_types: Iterable[str] = ("ml.m5.large",), content_types: Iterable[str] = CONTENT_TYPES,
                     clients: Clients | None = None) -> Ensured:
    """Register release ``execution_id``'s model in ``group`` (once), with its evaluation as model quality.

    When the release is registered already, its approval is changed to ``approval`` unless that is
    PendingManualApproval (a decision already taken is never reset); else it is left alone.
    """
    clients = resolve(clients)
    sagemaker = clients.sagemaker
    existing = find_version(group, execution_id, clients=clients)
    if existing:
        arn = existing["ModelPackageArn"]
        if approval != PENDING and existing.get("ModelApprovalStatus") != approval:
            return set_approval(arn, approval, clients=clients)
        return Ensured(Action.UNCHANGED, "model package", arn, arn,
                       {"approval": existing.get("ModelApprovalStatus"), "version": existing.get("ModelPackageVersion")})
    types = list(content_types)
    request: dict[str, Any] = {
        "ModelPackageGroupName": group,
        "ModelPackageDescription": f"{description} {_release_marker(execution_id)}".strip(),
        "ModelApprovalStatus": approval,
        "InferenceSpecification": {
            "Containers": [{"Image": image_uri, "ModelDataUrl": model_data_url}],
            "SupportedContentTypes": types, "SupportedResponseMIMETypes": types,
            "SupportedRealtimeInferenceInstanceTypes": list(instance_types)},
        "MetadataProperties": {"GeneratedBy": execution_id},
        "CustomerMetadataProperties": {"ExecutionId": execution_id},
    }
    if evaluation_uri:
        request["ModelMetrics"] = {"ModelQuality": {"Statistics": {
            "ContentType": "application/json", "S3Uri": evaluation_uri}}}
    arn = sagemaker.create_model_package(**request)["ModelPackageArn"]
    log.info("model_registered", group=group, model_package=arn, approval=approval, execution_id=execution_id)
    return Ensured(Action.CREATED, "model package", arn, arn, {"approval": approval})


def latest_approved_version(group: str, *, clients: Clients | None = None) -> dict | None:
    """The full description of the newest Approved version of ``group`` (all pages read), or None."""
    sagemaker = resolve(clients).sagemaker
    approved = list(_versions(group, sagemaker, ModelApprovalStatus=APPROVED))
    if not approved:
        return None
    newest = max(approved, key=lambda v: (v.get("ModelPackageVersion") or 0, v["CreationTime"]))
    return sagemaker.describe_model_package(ModelPackageName=newest["ModelPackageArn"])


def evaluation_uri_of(version: Mapping[str, Any]) -> str | None:
    """The model-quality statistics (evaluation.json) S3 URI of a version description, if any."""
    return version.get("ModelMetrics", {}).get("ModelQuality", {}).get("Statistics", {}).get("S3Uri")


def serving_container(version: Mapping[str, Any]) -> tuple[str, str]:
    """(image URI, model data URL) of a version description."""
    container = version["InferenceSpecification"]["Containers"][0]
    return container["Image"], container["ModelDataUrl"]
