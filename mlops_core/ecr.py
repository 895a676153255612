"""ECR: the model image repository (scan on push, lifecycle policy keeping the last N images)."""

from __future__ import annotations

import json
from collections.abc import Mapping

from mlops_core.aws import Clients, resolve
from mlops_core.ensure import (
    Ensured,
    contains,
    delete_tolerant,
    describe_or_none,
    normalize_document,
    result,
)

KIND = "ecr repository"


def lifecycle_policy(keep_images: int) -> dict:
    """Expire every image but the ``keep_images`` most recent ones."""
    return {"rules": [{"rulePriority": 1, "description": f"keep the last {keep_images} images",
                       "selection": {"tagStatus": "any", "countType": "imageCountMoreThan",
                                     "countNumber": keep_images},
                       "action": {"type": "expire"}}]}


def describe_repository(name: str, *, clients: Clients | None = None) -> dict | None:
    """The repository's description, or None when it does not exist."""
    found = describe_or_none(resolve(clients).ecr.describe_repositories, repositoryNames=[name])
    return found["repositories"][0] if found else None


def _current_lifecycle_policy(ecr, name: str) -> dict | None:
    found = describe_or_none(ecr.get_lifecycle_policy, repositoryName=name)
    return normalize_document(found["lifecyclePolicyText"]) if found else None


def ensure_repository(name: str, *, keep_images: int = 10, immutable_tags: bool = True,
                      tags: Mapping[str, str] | None = None, dry_run: bool = False,
                      clients: Clients | None = None) -> Ensured:
    """Create the repository or bring its tag mutability (immutable by default: a tag always names the same
    image), scan-on-push and lifecycle policy in line."""
    ecr = resolve(clients).ecr
    current = describe_repository(name, clients=clients)
    policy = lifecycle_policy(keep_images)
    changes: list[str] = []
    created = current is None
    mutability = "IMMUTABLE" if immutable_tags else "MUTABLE"
    if current is None:
        if not dry_run:
            current = ecr.create_repository(
                repositoryName=name, imageTagMutability=mutability,
                imageScanningConfiguration={"scanOnPush": True},
                tags=[{"Key": k, "Value": v} for k, v in (tags or {}).items()])["repository"]
            ecr.put_lifecycle_policy(repositoryName=name, lifecyclePolicyText=json.dumps(policy))
    else:
        if current.get("imageTagMutability") != mutability:
            changes.append("tag mutability")
            if not dry_run:
                ecr.put_image_tag_mutability(repositoryName=name, imageTagMutability=mutability)
        if not contains(current.get("imageScanningConfiguration"), {"scanOnPush": True}):
            changes.append("scan on push")
            if not dry_run:
                ecr.put_image_scanning_configuration(repositoryName=name,
                                                     imageScanningConfiguration={"scanOnPush": True})
        if _current_lifecycle_policy(ecr, name) != normalize_document(policy):
            changes.append("lifecycle policy")
            if not dry_run:
                ecr.put_lifecycle_policy(repositoryName=name, lifecyclePolicyText=json.dumps(policy))
    current = current or {}
    return result(KIND, name, created=created, changes=changes, arn=current.get("repositoryArn"), dry_run=dry_run,
                  uri=current.get("repositoryUri"))


def delete_repository(name: str, *, clients: Clients | None = None) -> Ensured:
    """Delete the repository with its images (``force``); ABSENT when it is already gone."""
    return delete_tolerant(KIND, name, resolve(clients).ecr.delete_repository, repositoryName=name, force=True)
